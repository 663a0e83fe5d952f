package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrBusy is returned by Put when the messages being received at once
// hold all the memory Config.MaxBufferedBytes allows and none freed it in
// time; the server answers with a temporary failure, and the client tries
// again later.
var ErrBusy = errors.New("queue: too much message content being received at once")

// MemBudget bounds the octets that Put calls hold in memory at once, so
// that many large transfers cannot exhaust memory (a server must accept
// mail for its domains from anyone). A caller that waits too long gives up.
// Every backend's Put reads bodies through one.
type MemBudget struct {
	mu    sync.Mutex
	total int64
	held  int64
	// waiting counts the callers waiting for octets to be freed.
	waiting int
	freed   chan struct{} // closed and replaced when octets are released
}

// NewMemBudget returns a budget of total octets.
func NewMemBudget(total int64) *MemBudget {
	return &MemBudget{total: total, freed: make(chan struct{})}
}

// acquire takes n octets, waiting until they are free or wait has passed.
// A request larger than the whole budget is granted when nothing else is
// held, so that one message up to the size limit can always be received.
func (b *MemBudget) acquire(ctx context.Context, n int64, wait time.Duration) error {
	var deadline <-chan time.Time
	for {
		b.mu.Lock()
		if b.held+n <= b.total || b.held == 0 {
			b.held += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.waiting++
		b.mu.Unlock()
		if deadline == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			deadline = t.C
		}
		var err error
		select {
		case <-freed:
		case <-deadline:
			err = ErrBusy
		case <-ctx.Done():
			err = ctx.Err()
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// Acquire takes n octets for content held outside Put (such as a message
// verified before it is stored, with a budget of its own), waiting at most wait for them (ErrBusy
// then) or until ctx is done; Release returns them. Like Put, a request
// larger than the whole budget is granted when nothing else is held.
func (b *MemBudget) Acquire(ctx context.Context, n int64, wait time.Duration) error {
	return b.acquire(ctx, n, wait)
}

// TryAcquire takes n octets if they are free now, without waiting, and
// reports whether it did; a caller that gets false keeps the content
// elsewhere (a temporary file).
func (b *MemBudget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held+n > b.total {
		return false
	}
	b.held += n
	return true
}

// Held returns the octets held now.
func (b *MemBudget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// Total returns the octets the budget allows.
func (b *MemBudget) Total() int64 { return b.total }

// Release returns n octets to the budget.
func (b *MemBudget) Release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.held -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// ReadBody appends body to b, growing b within the budget (waiting at most
// wait for room) up to limit octets in all. It returns the buffer and the
// octets it holds from the budget (to Release once the message is stored),
// or an error (ErrBusy, ErrTooLarge, the reader's); on every path the body
// has been read to its end, so that the server's DATA reader stays in step.
func (mb *MemBudget) ReadBody(ctx context.Context, b []byte, body io.Reader, wait time.Duration, limit int) ([]byte, int64, error) {
	held := int64(cap(b))
	if err := mb.acquire(ctx, held, wait); err != nil {
		return nil, 0, drainAfter(body, err)
	}
	for {
		if len(b) == cap(b) {
			grown := append(b, 0)[:len(b)]
			more := int64(cap(grown)) - held
			if err := mb.acquire(ctx, more, wait); err != nil {
				mb.Release(held)
				return nil, 0, drainAfter(body, err)
			}
			b, held = grown, held+more
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > limit {
			mb.Release(held)
			return nil, 0, drainAfter(body, ErrTooLarge)
		}
		if err == io.EOF {
			return b, held, nil
		}
		if err != nil {
			mb.Release(held)
			return nil, 0, err
		}
	}
}

// drainAfter reads body to its end and returns err, or the read error.
func drainAfter(body io.Reader, err error) error {
	if _, derr := io.Copy(io.Discard, body); derr != nil {
		return fmt.Errorf("%w (then reading the rest: %v)", err, derr)
	}
	return err
}
