package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// StateFilter selects messages by state in Walk.
type StateFilter uint8

// State filters.
const (
	AnyState      StateFilter = iota
	ActiveState               // not held, with a recipient due or being attempted
	DeferredState             // with at least one deferred recipient
	HeldState                 // held by the administrator
)

// Filter selects messages in Walk. Zero fields match everything. Sender
// and Recipient match case-insensitive substrings of "local@domain" ("<>"
// for the null sender).
type Filter struct {
	Sender    string
	Recipient string
	// Hop matches messages with a recipient for this next hop.
	Hop    string
	MinAge time.Duration
	MaxAge time.Duration
	State  StateFilter
}

// Resolve returns the one queued message ID that starts with prefix.
func (q *Queue) Resolve(prefix string) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m := q.msgs[prefix]; m != nil {
		return prefix, nil
	}
	found := ""
	if prefix != "" {
		for id := range q.msgs {
			if strings.HasPrefix(id, prefix) {
				if found != "" {
					return "", fmt.Errorf("%w: %q", ErrAmbiguous, prefix)
				}
				found = id
			}
		}
	}
	if found == "" {
		return "", fmt.Errorf("%w: %q", ErrNotFound, prefix)
	}
	return found, nil
}

// Walk calls fn for every queued message matching f, in ID order, until fn
// returns false. Rcpts carry no replies or history (see Show).
func (q *Queue) Walk(f Filter, fn func(*MessageInfo) bool) error {
	q.mu.Lock()
	now := q.now()
	var ids []string
	for id, m := range q.msgs {
		if q.matchIndex(m, f, now) {
			ids = append(ids, id)
		}
	}
	q.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		q.mu.Lock()
		m := q.msgs[id]
		var info *MessageInfo
		var err error
		if m != nil {
			info, err = q.info(m, false)
		}
		q.mu.Unlock()
		if m == nil {
			continue
		}
		if err != nil {
			return err
		}
		if !MatchEnvelope(info.Env, f) {
			continue
		}
		if !fn(info) {
			return nil
		}
	}
	return nil
}

// matchIndex applies the filters that need no envelope. Callers hold q.mu.
func (q *Queue) matchIndex(m *msg, f Filter, now int64) bool {
	age := since(m.arrival, now)
	if f.MinAge > 0 && age < f.MinAge || f.MaxAge > 0 && age > f.MaxAge {
		return false
	}
	if f.Hop != "" {
		ok := false
		for _, g := range m.groups {
			ok = ok || g.h.name == smtp.DomainKey(f.Hop)
		}
		if !ok {
			return false
		}
	}
	switch f.State {
	case HeldState:
		return m.held
	case ActiveState:
		if m.held {
			return false
		}
		for i := range m.rcpts {
			if r := &m.rcpts[i]; !r.final() && r.next <= now {
				return true
			}
		}
		for _, g := range m.groups {
			if g.lease != 0 {
				return true
			}
		}
		return false
	case DeferredState:
		for i := range m.rcpts {
			if m.rcpts[i].state == Deferred {
				return true
			}
		}
		return false
	}
	return true
}

// Show returns one message with its envelope and every recipient's state,
// last reply and attempt history.
func (q *Queue) Show(id string) (*MessageInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs[id]
	if m == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return q.info(m, true)
}

// info describes m, reading the envelope and, with history, every state
// record from disk. Callers hold q.mu.
func (q *Queue) info(m *msg, history bool) (*MessageInfo, error) {
	env, err := loadEnvelope(m.id, m.base, int(m.bodyOff))
	if err != nil {
		return nil, err
	}
	info := &MessageInfo{ID: m.id, Env: env, Size: int64(m.recLen - m.bodyOff), Held: m.held, Body: q.bodyOpener(m.id)}
	for i := range m.rcpts {
		r := &m.rcpts[i]
		st := RcptStatus{Index: i, Hop: r.hop.name, State: r.state, Attempts: int(r.attempts)}
		if i < len(env.Rcpts) {
			st.Addr = env.Rcpts[i].Addr
		}
		if !r.final() {
			st.Next = time.Unix(0, r.next)
		}
		if g := m.groupOf(r.hop); g != nil && !r.final() {
			if ls := q.leases[g.lease]; ls != nil {
				st.LeasedBy, st.LeaseEpoch, st.LeaseExpires = q.cfg.Node, ls.id, time.Unix(0, ls.expires)
			}
		}
		info.Rcpts = append(info.Rcpts, st)
	}
	if !history {
		return info, nil
	}
	for _, l := range m.hist {
		b, err := readRecordAt(l)
		if err != nil {
			return nil, err
		}
		r, err := decodeRecord(b)
		if err != nil || r.typ != recState {
			continue
		}
		s, err := decodeState(r.rest)
		if err != nil || s.Rcpt >= len(info.Rcpts) {
			continue
		}
		st := &info.Rcpts[s.Rcpt]
		st.History = append(st.History, Attempt{At: s.At, State: s.State, Reply: s.Reply, RemoteMTA: s.RemoteMTA, Next: s.Next, Expired: s.Expired})
		st.LastReply, st.RemoteMTA, st.LastAttempt, st.Expired = s.Reply, s.RemoteMTA, s.At, s.Expired
	}
	return info, nil
}

// change writes records built by mk for message id (under the lock) and
// applies them; mk returns no records when there is nothing to do.
func (q *Queue) change(ctx context.Context, id string, mk func(m *msg) [][]byte) error {
	return q.changeThen(ctx, id, mk, nil)
}

// changeThen is change with after, when not nil, called once the records
// are committed and before a message they finish is finished.
func (q *Queue) changeThen(ctx context.Context, id string, mk func(m *msg) [][]byte, after func(m *msg)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	m := q.msgs[id]
	if m == nil {
		q.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	recs := mk(m)
	if len(recs) == 0 {
		q.mu.Unlock()
		return nil
	}
	req := q.submitFor(m, recs...)
	q.mu.Unlock()
	fin, err := q.applyCommitted(m, req)
	if err != nil {
		return wrapf(err, "update %s", id)
	}
	if after != nil {
		after(m)
	}
	if fin {
		q.finishMessage(m, false)
	}
	return nil
}

// Hold stops delivery of a message until Unhold. A held message does not
// expire while held; when released past its lifetime it expires at once.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.change(ctx, id, func(m *msg) [][]byte {
		if m.held {
			return nil
		}
		return [][]byte{encodeSimple(recHold, id)}
	})
}

// Unhold releases a held message; its due recipients are due at once.
func (q *Queue) Unhold(ctx context.Context, id string) error {
	return q.change(ctx, id, func(m *msg) [][]byte {
		if !m.held {
			return nil
		}
		return [][]byte{encodeSimple(recUnhold, id)}
	})
}

// RetryNow makes every pending recipient of a message due at once.
func (q *Queue) RetryNow(ctx context.Context, id string) error {
	return q.change(ctx, id, func(m *msg) [][]byte { return [][]byte{encodeSimple(recRetry, id)} })
}

// RetryHop makes every message with a pending recipient for hop due at
// once; it returns how many messages it touched.
func (q *Queue) RetryHop(ctx context.Context, hop string) (int, error) {
	hop = smtp.DomainKey(hop)
	q.mu.Lock()
	var ids []string
	for id, m := range q.msgs {
		for i := range m.rcpts {
			if r := &m.rcpts[i]; r.hop.name == hop && !r.final() {
				ids = append(ids, id)
				break
			}
		}
	}
	q.mu.Unlock()
	n := 0
	for _, id := range ids {
		err := q.RetryNow(ctx, id)
		if err == nil {
			n++
			continue
		}
		if !isNotFound(err) {
			return n, err
		}
	}
	return n, nil
}

// Delete removes a message without notice to anyone (no DSN).
func (q *Queue) Delete(ctx context.Context, id string) error {
	err := q.change(ctx, id, func(m *msg) [][]byte { return [][]byte{encodeSimple(recDone, id, doneDeleted)} })
	if err == nil {
		q.log.Info("deleted", "id", id)
	}
	return err
}

// BounceNow fails every pending recipient of a message with a reply saying
// the administrator bounced it; the message then finishes (EventFinished,
// so the sender gets a DSN).
func (q *Queue) BounceNow(ctx context.Context, id string) error {
	var bounced []int
	now := q.cfg.Clock()
	return q.changeThen(ctx, id, func(m *msg) [][]byte {
		var recs [][]byte
		for i := range m.rcpts {
			if r := &m.rcpts[i]; !r.final() {
				recs = append(recs, encodeState(id, stateRec{Rcpt: i, State: Failed, Attempts: int(r.attempts), At: now, Reply: AdminBounceReply()}))
				bounced = append(bounced, i)
			}
		}
		return recs
	}, func(m *msg) { q.logAdminBounces(m, bounced, now) })
}

// logAdminBounces writes the delivery log's line for each recipient an
// administrator bounced, as delivery writes a bounce ("ID: to=<rcpt>,
// relay=none, delay=S, status=bounced (reply)", event "bounced"), so that
// the log and the bounce metrics count it like any other.
func (q *Queue) logAdminBounces(m *msg, rcpts []int, now time.Time) {
	q.mu.Lock()
	info, err := q.info(m, false)
	q.mu.Unlock()
	if err != nil {
		q.log.Error("queue: cannot read bounced message for its log lines", "id", m.id, "err", err)
		return
	}
	rep := AdminBounceReply().String()
	delay := max(0, now.Sub(time.Unix(0, m.arrival)).Seconds())
	for _, i := range rcpts {
		if i >= len(info.Rcpts) {
			continue
		}
		to := info.Rcpts[i].Addr.Address()
		q.log.Info(fmt.Sprintf("%s: to=<%s>, relay=none, delay=%.2f, status=bounced (%s)", m.id, to, delay, rep),
			"event", "bounced", "id", m.id, "to", to, "relay", "none", "delay", delay, "status", "bounced", "reply", rep, "by", "admin")
	}
}

// finishMessage delivers EventFinished for m and then writes its done
// record and drops it from the index, unless the report could not be
// queued (Event.Keep): then m stays, and the event is delivered again
// later (see keepUnreported).
func (q *Queue) finishMessage(m *msg, recovered bool) {
	q.finish(m, recovered, false)
}

// finishMessageAgain delivers EventFinished again for m, kept because its
// report could not be queued, and reports whether it was kept once more.
func (q *Queue) finishMessageAgain(m *msg, recovered bool) bool {
	q.mu.Lock()
	live := q.msgs[m.id] == m && !q.closed
	q.mu.Unlock()
	return live && q.finish(m, recovered, true)
}

// finish is finishMessage; retried marks the event as delivered again. It
// reports whether m was kept for its report.
func (q *Queue) finish(m *msg, recovered, retried bool) bool {
	if q.cfg.OnEvent != nil {
		q.mu.Lock()
		info, err := q.info(m, true)
		q.mu.Unlock()
		if err != nil {
			q.log.Error("queue: cannot read finished message for its report", "id", m.id, "err", err)
		} else {
			var keep error
			q.cfg.OnEvent(Event{Kind: EventFinished, ID: m.id, Env: info.Env, Rcpts: info.Rcpts, Body: info.Body,
				Recovered: recovered, Retried: retried, Keep: func(err error) { keep = err }})
			if keep != nil {
				q.keepUnreported(m, recovered, keep)
				return true
			}
		}
	}
	// A done record that cannot be written now is retried by the
	// collector; the failure itself is logged as a write episode.
	_ = q.writeDone(m)
	return false
}

// emitDelayed delivers EventDelayed after recipient rcpt of m was
// deferred, with every recipient's state so that one delay report can
// cover all the deferred ones (RFC 3464 §2.3).
func (q *Queue) emitDelayed(m *msg, rcpt int) {
	q.mu.Lock()
	if q.msgs[m.id] != m {
		q.mu.Unlock()
		return
	}
	info, err := q.info(m, true)
	q.mu.Unlock()
	if err != nil {
		q.log.Error("queue: cannot read delayed message for its report", "id", m.id, "err", err)
		return
	}
	q.cfg.OnEvent(Event{Kind: EventDelayed, ID: m.id, Env: info.Env, Rcpts: info.Rcpts, Body: info.Body, Rcpt: rcpt,
		Reported: func(tag string) (bool, error) {
			q.mu.Lock()
			defer q.mu.Unlock()
			return m.claims[tag], nil
		},
		PutReported: func(ctx context.Context, tag string, env *smtp.Envelope, body io.Reader) (string, error) {
			return q.putReported(ctx, m, tag, env, body)
		}})
}

// putReported is Event.PutReported for message m. The claim is taken in
// memory before the report is stored and given back if storing fails, so
// that two events at once cannot both store one; once the report is stored,
// a reported record keeps the claim across restarts. The two are separate
// commits, report first: a crash between them can only repeat the report
// after the restart, never lose it.
func (q *Queue) putReported(ctx context.Context, m *msg, tag string, env *smtp.Envelope, body io.Reader) (string, error) {
	q.mu.Lock()
	if m.claims[tag] {
		q.mu.Unlock()
		return "", ErrReported
	}
	if m.claims == nil {
		m.claims = make(map[string]bool)
	}
	m.claims[tag] = true
	q.mu.Unlock()
	id, err := q.PutReport(ctx, env, body)
	if err != nil {
		q.mu.Lock()
		delete(m.claims, tag)
		q.mu.Unlock()
		return "", err
	}
	err = q.change(ctx, m.id, func(*msg) [][]byte { return [][]byte{encodeSimple(recReported, m.id, []byte(tag)...)} })
	if err != nil && !isNotFound(err) {
		q.log.Warn("queue: report stored but not recorded as made; a restart may make it again", "id", m.id, "report", id, "tag", tag, "err", err)
	}
	return id, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
