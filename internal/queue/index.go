package queue

import (
	"container/heap"

	"github.com/ferrymta/ferry/internal/smtp"
)

// loc is where a record lives.
type loc struct {
	seg *segment
	off int64
}

// rcpt is the in-memory state of one recipient (24 octets).
type rcpt struct {
	hop      *hop
	next     int64 // next attempt, Unix nanoseconds; due when <= now
	attempts uint16
	state    RcptState
}

func (r *rcpt) final() bool { return r.state == Sent || r.state == Failed }

// msg is the in-memory index entry of one queued message. The envelope and
// body stay on disk; see loadEnvelope.
type msg struct {
	id      string
	base    loc   // the current message record
	recLen  int32 // length of the message record
	bodyOff int32 // offset of the body within the record
	arrival int64 // Unix nanoseconds
	bounce  bool  // null reverse path: BounceLifetime applies
	held    bool
	// finishing is set once every recipient is final and the message is
	// being finished (event, done record).
	finishing bool
	// pending counts records submitted but not yet applied.
	pending int32
	// delayRcpt is the recipient (+1) whose deferral during a lease still
	// owes an EventDelayed, sent when the lease ends so that the event sees
	// every recipient of that attempt; 0 when none is owed.
	delayRcpt int32
	// claims are the reports made through Event.PutReported, by tag
	// (from its reported records, so a restart keeps them).
	claims map[string]bool
	rcpts  []rcpt
	groups []*group
	hist   []loc // state, hold, unhold, retry and reported records, in log order
	segs   []*segment
}

// group is the recipients of one message that share a next hop: the unit
// of scheduling and of leases.
type group struct {
	m     *msg
	h     *hop
	due   int64
	idx   int // index in h.ready, -1 when not there
	lease uint64
	// epoch is the ID of the last lease that carried the group: Update
	// under an older lease is refused (fencing).
	epoch uint64
}

// hop is one next hop with its due groups.
type hop struct {
	name   string
	ready  groupHeap
	active int // leases out
	idx    int // index in Queue.hopHeap, -1 when not there
}

// hopKey returns the next-hop key of a recipient: its domain in
// smtp.DomainKey form, the one routes, relay decisions and logs use.
func hopKey(p smtp.Path) string { return smtp.DomainKey(p.Domain) }

type groupHeap []*group

func (h groupHeap) Len() int           { return len(h) }
func (h groupHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h groupHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *groupHeap) Push(x any) {
	g := x.(*group)
	g.idx = len(*h)
	*h = append(*h, g)
}
func (h *groupHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	g.idx = -1
	return g
}

type hopHeap []*hop

func (h hopHeap) Len() int           { return len(h) }
func (h hopHeap) Less(i, j int) bool { return h[i].ready[0].due < h[j].ready[0].due }
func (h hopHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *hopHeap) Push(x any) {
	p := x.(*hop)
	p.idx = len(*h)
	*h = append(*h, p)
}
func (h *hopHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.idx = -1
	return p
}

// getHop returns the hop named name, creating it. Callers hold q.mu.
func (q *Queue) getHop(name string) *hop {
	h := q.hops[name]
	if h == nil {
		h = &hop{name: name, idx: -1}
		q.hops[name] = h
	}
	return h
}

// updateHop puts h in the hop heap when it has due groups and room for
// another lease, and takes it out otherwise.
func (q *Queue) updateHop(h *hop) {
	ok := len(h.ready) > 0 && h.active < q.cfg.HopConcurrency
	switch {
	case ok && h.idx < 0:
		heap.Push(&q.hopHeap, h)
	case ok:
		heap.Fix(&q.hopHeap, h.idx)
	case h.idx >= 0:
		heap.Remove(&q.hopHeap, h.idx)
	}
}

// schedule recomputes when g is due and files it in its hop's heap, unless
// it is leased, held or has no pending recipients. Callers hold q.mu.
func (q *Queue) schedule(g *group) {
	due, ok := int64(0), false
	if g.lease == 0 && !g.m.held && !g.m.finishing {
		for i := range g.m.rcpts {
			r := &g.m.rcpts[i]
			if r.hop != g.h || r.final() {
				continue
			}
			if !ok || r.next < due {
				due, ok = r.next, true
			}
		}
	}
	switch {
	case ok && g.idx < 0:
		g.due = due
		heap.Push(&g.h.ready, g)
	case ok:
		g.due = due
		heap.Fix(&g.h.ready, g.idx)
	case g.idx >= 0:
		heap.Remove(&g.h.ready, g.idx)
	}
	q.updateHop(g.h)
}

// newMsg builds the index entry of a message record. Callers hold q.mu.
func (q *Queue) newMsg(env *smtp.Envelope, l loc, recLen, bodyOff int) *msg {
	m := &msg{
		id:      env.ID,
		base:    l,
		recLen:  int32(recLen),
		bodyOff: int32(bodyOff),
		arrival: timeNano(env.Arrival),
		bounce:  env.From.IsNull(),
		rcpts:   make([]rcpt, len(env.Rcpts)),
	}
	for i, r := range env.Rcpts {
		h := q.getHop(hopKey(r.Addr))
		m.rcpts[i] = rcpt{hop: h, next: m.arrival}
		found := false
		for _, g := range m.groups {
			if g.h == h {
				found = true
				break
			}
		}
		if !found {
			m.groups = append(m.groups, &group{m: m, h: h, idx: -1})
		}
	}
	q.addRef(m, l.seg)
	l.seg.live += int64(recLen)
	return m
}

// addRef notes that m has a record in s.
func (q *Queue) addRef(m *msg, s *segment) {
	for _, x := range m.segs {
		if x == s {
			return
		}
	}
	m.segs = append(m.segs, s)
	s.refs++
}

// dropRefs releases m's hold on its segments.
func (q *Queue) dropRefs(m *msg) {
	for _, s := range m.segs {
		s.refs--
	}
	m.segs = nil
	m.base.seg.live -= int64(m.recLen)
}

// unindex removes m from the index and the schedule. Callers hold q.mu.
func (q *Queue) unindex(m *msg) {
	if q.msgs[m.id] != m {
		return
	}
	delete(q.msgs, m.id)
	for _, g := range m.groups {
		if g.idx >= 0 {
			heap.Remove(&g.h.ready, g.idx)
			q.updateHop(g.h)
		}
	}
	q.dropRefs(m)
	q.notify()
}

// allFinal reports whether every recipient of m is final.
func (m *msg) allFinal() bool {
	for i := range m.rcpts {
		if !m.rcpts[i].final() {
			return false
		}
	}
	return true
}

// groupOf returns the group of m for hop h.
func (m *msg) groupOf(h *hop) *group {
	for _, g := range m.groups {
		if g.h == h {
			return g
		}
	}
	return nil
}
