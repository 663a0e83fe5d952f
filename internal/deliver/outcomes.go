package deliver

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/queue"
)

// pendingOutcome is a recipient's outcome the queue could not record.
type pendingOutcome struct {
	// lease is the lease the outcome was delivered under (its fencing
	// epoch goes with the outcome).
	lease *queue.Lease
	id    string
	rcpt  int
	to    string
	res   queue.Result
}

// backlog holds outcomes the queue could not record (a full or read-only
// spool) until it can. While it holds any, no delivery starts: a recipient
// whose "sent" was not recorded is still due in the queue, and delivering
// it again would send it twice. The workers write the backlog first, with
// backoff, before they release their leases or take new ones, so that
// when the spool takes records again every outcome is recorded before any
// of its recipients could be leased again.
type backlog struct {
	ep  *maillog.Episode
	log *slog.Logger
	// writable, when set, says whether the queue can write now (see
	// writableQueue); it cuts a backoff wait short when the queue
	// recovers.
	writable func() error

	mu       sync.Mutex
	pending  []pendingOutcome
	flushing bool
	// changed is closed and replaced when the backlog empties or a
	// flusher gives up its turn.
	changed chan struct{}
}

// writableQueue is what a queue may offer to tell whether it can write
// now; queue.Queue does (its readiness check).
type writableQueue interface {
	Writable() error
}

// writablePoll is how often a backoff wait asks the queue whether it can
// write again.
const writablePoll = time.Second

func newBacklog(l *slog.Logger, q Queue) *backlog {
	var writable func() error
	if w, ok := q.(writableQueue); ok {
		writable = w.Writable
	}
	return &backlog{
		writable: writable,
		ep: maillog.NewEpisode(l, slog.LevelError,
			"deliver: outcomes cannot be recorded; new deliveries paused until the queue can write them",
			"deliver: outcomes still cannot be recorded; deliveries paused",
			"deliver: pending outcomes recorded; deliveries resume", nil),
		log:     l,
		changed: make(chan struct{}),
	}
}

// add keeps an outcome that Update failed to record with err.
func (b *backlog) add(p pendingOutcome, err error) {
	b.mu.Lock()
	b.pending = append(b.pending, p)
	n := len(b.pending)
	b.mu.Unlock()
	b.ep.Fail(err, "id", p.id, "to", p.to, "pending", n)
}

// paused reports whether outcomes wait to be recorded.
func (b *backlog) paused() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending) > 0
}

// recordable reports whether an Update error may go away once the spool
// is writable again; the others (the message is gone, the recipient final,
// the queue closed, the lease taken over, the delivery cut off at shutdown)
// would fail the same forever.
func recordable(err error) bool {
	return !errors.Is(err, queue.ErrNotFound) && !errors.Is(err, queue.ErrFinal) && !errors.Is(err, queue.ErrLeaseLost) &&
		!errors.Is(err, queue.ErrClosed) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded)
}

// flush writes the backlog with update, oldest first, waiting between
// failed attempts with backoff (1s doubling to 30s). One worker at a time
// writes, keeping its turn while it waits; the others wait for it. It
// returns true once the backlog is empty, false when ctx ended first.
func (b *backlog) flush(ctx context.Context, update func(context.Context, pendingOutcome) error) bool {
	b.mu.Lock()
	for b.flushing && len(b.pending) > 0 {
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
		b.mu.Lock()
	}
	if len(b.pending) == 0 {
		b.mu.Unlock()
		return true
	}
	b.flushing = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.flushing = false
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
	}()
	recorded, sent := 0, 0
	for {
		b.mu.Lock()
		todo := b.pending
		b.pending = nil
		b.mu.Unlock()
		var failed error
		done := 0
		for _, p := range todo {
			if ctx.Err() != nil {
				break
			}
			err := update(ctx, p)
			if err != nil && (recordable(err) || ctx.Err() != nil) {
				failed = err
				break
			}
			if err != nil {
				b.log.Error("deliver: recording outcome failed", "id", p.id, "to", p.to, "err", err)
			} else if p.res.State == queue.Sent {
				sent++
			}
			done++
		}
		recorded += done
		b.mu.Lock()
		b.pending = append(todo[done:], b.pending...)
		n := len(b.pending)
		b.mu.Unlock()
		switch {
		case n == 0:
			// sent counts the recipients the next hop had accepted:
			// without the backlog they would have been sent again.
			b.ep.OK("recorded", recorded, "sent", sent)
			return true
		case failed == nil:
			continue // more arrived meanwhile
		}
		if ctx.Err() != nil {
			return false
		}
		if !b.wait(ctx, b.ep.Fail(failed, "pending", n)) {
			return false
		}
	}
}

// wait waits d, or less once the queue reports that it can write again
// after it could not; it returns false when ctx ended first.
func (b *backlog) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var poll <-chan time.Time
	if b.writable != nil {
		tk := time.NewTicker(writablePoll)
		defer tk.Stop()
		poll = tk.C
	}
	failing := false
	for {
		select {
		case <-t.C:
			return true
		case <-poll:
			if b.writable() != nil {
				failing = true
			} else if failing {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// abandon empties the backlog at shutdown, when the spool never took the
// outcomes back: their recipients are still due and are delivered again
// after the next start. It logs each one.
func (b *backlog) abandon() {
	b.mu.Lock()
	todo := b.pending
	b.pending = nil
	b.mu.Unlock()
	for _, p := range todo {
		b.log.Error("deliver: outcome never recorded; the recipient will be attempted again after restart",
			"id", p.id, "to", p.to, "state", statusWord(p.res.State), "reply", p.res.Reply.String())
	}
}

// record is the backlog's update: Update with the kept result.
func (a *Agent) record(ctx context.Context, p pendingOutcome) error {
	return a.q.Update(ctx, p.lease, p.id, p.rcpt, p.res)
}
