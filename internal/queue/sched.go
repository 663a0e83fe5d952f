package queue

import (
	"container/heap"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// leaseState is the queue's side of a Lease.
type leaseState struct {
	id      uint64
	h       *hop
	groups  []*group
	expires int64
}

// expiringLease marks a group that is being expired.
const expiringLease = ^uint64(0)

// retryTogether is how close to due a pending recipient may be to join a
// lease of its message: recipients deferred in one attempt are recorded
// moments apart, and should go out again in one transaction.
const retryTogether = time.Second

// Lease blocks until due work exists for a next hop that has room for
// another lease, or ctx is done, and returns up to LeaseMaxItems messages
// for that hop. The caller reports each recipient with Update and ends the
// lease with Release. Messages past their lifetime are failed (4.4.7) here
// instead of being handed out.
func (q *Queue) Lease(ctx context.Context) (*Lease, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, ErrClosed
		}
		now := q.now()
		wakeAt := q.reapLeases(now)
		if len(q.hopHeap) > 0 {
			h := q.hopHeap[0]
			if d := h.ready[0].due; d <= now {
				l, expired := q.takeLease(h, now)
				q.mu.Unlock()
				for _, g := range expired {
					q.expireGroup(g)
				}
				if l != nil {
					return l, nil
				}
				continue
			} else if wakeAt == 0 || d < wakeAt {
				wakeAt = d
			}
		}
		wake := q.wake
		q.mu.Unlock()
		wait := time.Second
		if wakeAt != 0 {
			wait = min(wait, max(time.Duration(wakeAt-now), time.Millisecond))
		}
		if err := WaitWake(ctx, wake, wait); err != nil {
			return nil, err
		}
	}
}

// lifetime returns m's lifetime.
func (q *Queue) lifetime(m *msg) time.Duration {
	if m.bounce {
		return q.cfg.BounceLifetime
	}
	return q.cfg.Lifetime
}

// takeLease hands out due groups of h. Groups of expired messages are
// returned separately, marked as being expired. Callers hold q.mu.
func (q *Queue) takeLease(h *hop, now int64) (*Lease, []*group) {
	q.nextLease++
	ls := &leaseState{id: q.nextLease, h: h, expires: now + int64(q.cfg.LeaseTimeout)}
	var expired []*group
	l := &Lease{Hop: h.name, Expires: time.Unix(0, ls.expires), Epoch: ls.id, Node: q.cfg.Node, id: ls.id}
	for len(h.ready) > 0 && h.ready[0].due <= now && len(ls.groups) < q.cfg.LeaseMaxItems {
		g := heap.Pop(&h.ready).(*group)
		m := g.m
		if now >= m.arrival+int64(q.lifetime(m)) {
			g.lease = expiringLease
			expired = append(expired, g)
			continue
		}
		env, err := loadEnvelope(m.id, m.base, int(m.bodyOff))
		if err != nil {
			q.log.Error("queue: cannot read envelope; retrying later", "id", m.id, "err", err)
			for i := range m.rcpts {
				if m.rcpts[i].hop == h && !m.rcpts[i].final() {
					m.rcpts[i].next = now + int64(q.cfg.RetryInitial)
				}
			}
			q.schedule(g)
			continue
		}
		it := Item{Env: env, Size: int64(m.recLen - m.bodyOff), Body: q.bodyOpener(m.id), Lease: l}
		for i := range m.rcpts {
			r := &m.rcpts[i]
			if r.hop == h && !r.final() && r.next <= now+int64(retryTogether) {
				it.Rcpts = append(it.Rcpts, i)
				it.Attempts = max(it.Attempts, int(r.attempts))
			}
		}
		g.lease, g.epoch = ls.id, ls.id
		ls.groups = append(ls.groups, g)
		l.Items = append(l.Items, it)
	}
	if len(ls.groups) == 0 {
		q.updateHop(h)
		return nil, expired
	}
	h.active++
	q.leases[ls.id] = ls
	q.updateHop(h)
	return l, expired
}

// reapLeases takes back leases past their expiry and returns the earliest
// expiry still ahead (0 if none). Callers hold q.mu.
func (q *Queue) reapLeases(now int64) int64 {
	var next int64
	for _, ls := range q.leases {
		if ls.expires <= now {
			q.log.Warn("queue: lease expired; work returns to the queue", "hop", ls.h.name, "messages", len(ls.groups))
			q.endLease(ls)
			continue
		}
		if next == 0 || ls.expires < next {
			next = ls.expires
		}
	}
	return next
}

// Renew extends a lease by the lease timeout from now, for a worker whose
// deliveries take long (a slow hop, many messages). It reports false when
// the lease was already taken back: its work may be leased to another
// worker, and the caller must stop delivering it.
func (q *Queue) Renew(l *Lease) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	ls := q.leases[l.id]
	if ls == nil {
		return false
	}
	ls.expires = q.now() + int64(q.cfg.LeaseTimeout)
	l.Expires = time.Unix(0, ls.expires)
	return true
}

// Release ends a lease. Recipients not reported with Update are due again
// at once. Releasing a lease that was taken back is harmless.
func (q *Queue) Release(l *Lease) {
	q.mu.Lock()
	var delayed []*msg
	if ls := q.leases[l.id]; ls != nil {
		for _, g := range ls.groups {
			if g.lease == ls.id && g.m.delayRcpt > 0 {
				delayed = append(delayed, g.m)
			}
		}
		q.endLease(ls)
	}
	rcpts := make([]int, len(delayed))
	for i, m := range delayed {
		rcpts[i] = int(m.delayRcpt) - 1
		m.delayRcpt = 0
	}
	q.mu.Unlock()
	// Delay events wait for the end of the attempt, so that each sees the
	// outcome of every recipient tried in it.
	for i, m := range delayed {
		q.emitDelayed(m, rcpts[i])
	}
}

// leased reports whether a group of m is out on a lease. Callers hold q.mu.
func (m *msg) leased() bool {
	for _, g := range m.groups {
		if g.lease != 0 {
			return true
		}
	}
	return false
}

// endLease returns a lease's groups to the schedule. Unreported recipients
// keep their next-attempt time, which was due when leased. Callers hold q.mu.
func (q *Queue) endLease(ls *leaseState) {
	delete(q.leases, ls.id)
	ls.h.active--
	for _, g := range ls.groups {
		if g.lease != ls.id {
			continue
		}
		g.lease = 0
		if q.msgs[g.m.id] == g.m {
			q.schedule(g)
		}
	}
	q.updateHop(ls.h)
	q.notify()
}

// backoff returns the delay before the retry that follows attempt number n
// (1 for the first attempt), see RetryDelay.
func (q *Queue) backoff(n int, seed uint64) time.Duration {
	return retryDelay(q.cfg.RetryInitial, q.cfg.RetryMax, q.cfg.Jitter, n, seed)
}

// jitterSeed derives the backoff jitter seed of a message from its ID.
func jitterSeed(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// Update records the outcome of one attempt for recipient rcpt of message
// id, delivered under lease l, durably. Sent and Failed are final. Deferred
// schedules the next attempt after the backoff delay, or fails the
// recipient with 4.4.7 when the message has outlived its lifetime. When the
// last recipient becomes final the message is finished (EventFinished, then
// a done record). An outcome reported after l was taken back is still
// recorded unless the work was leased again since (ErrLeaseLost).
func (q *Queue) Update(ctx context.Context, l *Lease, id string, rcpt int, r Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	m := q.msgs[id]
	if m == nil {
		q.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if rcpt < 0 || rcpt >= len(m.rcpts) {
		q.mu.Unlock()
		return fmt.Errorf("queue: message %s has no recipient %d", id, rcpt)
	}
	rc := &m.rcpts[rcpt]
	if rc.final() {
		q.mu.Unlock()
		return fmt.Errorf("%w: %s recipient %d", ErrFinal, id, rcpt)
	}
	if l != nil {
		if g := m.groupOf(rc.hop); g == nil || g.epoch != l.Epoch {
			q.mu.Unlock()
			return fmt.Errorf("%w: %s recipient %d (lease epoch %d)", ErrLeaseLost, id, rcpt, l.Epoch)
		}
	}
	now := q.now()
	at := r.At
	if at.IsZero() {
		at = time.Unix(0, now)
	}
	s := stateRec{Rcpt: rcpt, Attempts: int(rc.attempts) + 1, At: at, RemoteMTA: r.RemoteMTA, Reply: r.Reply}
	switch r.State {
	case Sent, Failed:
		s.State = r.State
	case Deferred:
		deadline := m.arrival + int64(q.lifetime(m))
		if now >= deadline {
			s.State, s.Expired = Failed, true
			s.Reply = q.expiryReply(m, r.Reply)
		} else {
			s.State = Deferred
			s.Next = time.Unix(0, min(now+int64(q.backoff(s.Attempts, jitterSeed(id))), deadline))
		}
	default:
		q.mu.Unlock()
		return fmt.Errorf("queue: result state %d is not Sent, Deferred or Failed", r.State)
	}
	rec := encodeState(id, s)
	// A sent state lost in a crash of the machine means the recipient is
	// delivered again, never that mail is lost: its fdatasync is shared
	// with the next commit (submitLazy).
	req := q.submitLazyFor(m, s.State == Sent, rec)
	q.mu.Unlock()
	fin, err := q.applyCommitted(m, req)
	if err != nil {
		return wrapf(err, "record result for %s", id)
	}
	q.logResult(m, rcpt, s)
	if s.State == Deferred && q.cfg.OnEvent != nil {
		q.mu.Lock()
		leased := m.leased()
		if leased {
			m.delayRcpt = int32(rcpt) + 1
		}
		q.mu.Unlock()
		if !leased {
			q.emitDelayed(m, rcpt)
		}
	}
	if fin {
		q.finishMessage(m, false)
	}
	return nil
}

// logResult records one recipient's outcome in the log. Delivery already
// logs sent, deferred and bounced recipients in the mail log with the next
// hop's reply, so the queue's own line is a debug line, except for expiry,
// which only the queue knows of.
func (q *Queue) logResult(m *msg, rcpt int, s stateRec) {
	level, event := slog.LevelDebug, "recorded"
	if s.Expired {
		level, event = slog.LevelInfo, "expired"
	}
	q.log.Log(context.Background(), level, event, "id", m.id, "rcpt", rcpt, "hop", m.rcpts[rcpt].hop.name,
		"state", stateName(s.State), "relay", s.RemoteMTA, "reply", s.Reply.String(), "attempts", s.Attempts,
		"delay", time.Duration(timeNano(s.At)-m.arrival))
}

// stateName names a recipient state in log lines.
func stateName(st RcptState) string {
	switch st {
	case Sent:
		return "sent"
	case Deferred:
		return "deferred"
	case Failed:
		return "failed"
	}
	return "pending"
}

// expiryReply is the reply given to a recipient of m that failed because
// m outlived its lifetime (see ExpiryReply).
func (q *Queue) expiryReply(m *msg, last smtp.Reply) smtp.Reply {
	return ExpiryReply(q.lifetime(m), last)
}

// submitFor submits records that change m, keeping log order. Callers hold
// q.mu.
func (q *Queue) submitFor(m *msg, recs ...[]byte) *request {
	return q.submitLazyFor(m, false, recs...)
}

// submitLazyFor is submitFor, with the records' fdatasync left to the
// committer when lazy (see committer.submitLazy). Callers hold q.mu.
func (q *Queue) submitLazyFor(m *msg, lazy bool, recs ...[]byte) *request {
	m.pending++
	if q.closed {
		r := &request{recs: recs, err: ErrClosed, done: make(chan struct{})}
		close(r.done)
		return r
	}
	if lazy {
		return q.c.submitLazy(recs...)
	}
	return q.c.submit(recs...)
}

// applyCommitted waits for req and applies its records to m. It reports
// whether m has just become finished (all recipients final) and the caller
// must call finishMessage.
func (q *Queue) applyCommitted(m *msg, req *request) (bool, error) {
	<-req.done
	q.mu.Lock()
	defer q.mu.Unlock()
	m.pending--
	if req.err != nil {
		return false, req.err
	}
	if q.msgs[m.id] != m {
		return false, nil
	}
	for i, b := range req.recs {
		r, err := decodeRecord(b)
		if err == nil {
			err = q.applyChange(m, r, loc{req.seg, req.offs[i]})
		}
		if err != nil {
			return false, err
		}
	}
	if q.msgs[m.id] != m {
		return false, nil
	}
	if !m.finishing && m.allFinal() {
		m.finishing = true
	} else {
		for _, g := range m.groups {
			if g.lease == 0 {
				q.schedule(g)
			}
		}
		q.notify()
		return false, nil
	}
	for _, g := range m.groups {
		q.schedule(g)
	}
	return true, nil
}

// expireGroup fails the pending recipients of a group whose message has
// outlived its lifetime.
func (q *Queue) expireGroup(g *group) {
	m := g.m
	q.mu.Lock()
	if q.msgs[m.id] != m {
		q.mu.Unlock()
		return
	}
	last := q.lastReplies(m)
	now := q.now()
	var recs [][]byte
	for i := range m.rcpts {
		r := &m.rcpts[i]
		if r.hop != g.h || r.final() {
			continue
		}
		recs = append(recs, encodeState(m.id, stateRec{Rcpt: i, State: Failed, Expired: true,
			Attempts: int(r.attempts), At: time.Unix(0, now), Reply: q.expiryReply(m, last[i])}))
	}
	if len(recs) == 0 {
		g.lease = 0
		q.schedule(g)
		q.mu.Unlock()
		return
	}
	req := q.submitFor(m, recs...)
	q.mu.Unlock()
	fin, err := q.applyCommitted(m, req)
	q.mu.Lock()
	g.lease = 0
	if q.msgs[m.id] == m {
		q.schedule(g)
	}
	q.mu.Unlock()
	if err != nil {
		q.log.Error("queue: cannot record expiry", "id", m.id, "err", err)
		return
	}
	q.log.Info("expired", "id", m.id, "hop", g.h.name, "rcpts", len(recs))
	if fin {
		q.finishMessage(m, false)
	}
}

// lastReplies returns each recipient's last recorded reply, read from m's
// state records. Callers hold q.mu.
func (q *Queue) lastReplies(m *msg) []smtp.Reply {
	out := make([]smtp.Reply, len(m.rcpts))
	for _, l := range m.hist {
		b, err := readRecordAt(l)
		if err != nil {
			continue
		}
		r, err := decodeRecord(b)
		if err != nil || r.typ != recState {
			continue
		}
		if s, err := decodeState(r.rest); err == nil && s.Rcpt < len(out) {
			out[s.Rcpt] = s.Reply
		}
	}
	return out
}
