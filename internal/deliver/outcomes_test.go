package deliver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// unwritableQueue is a real queue whose Update fails as on a full spool
// while full is set (the queue's own tests and internal/e2e fill real
// file systems; here the agent's side is under test). It records the
// order of leases and recorded outcomes.
type unwritableQueue struct {
	*queue.Queue
	full   atomic.Bool
	failed atomic.Int32
	mu     sync.Mutex
	events []string
}

func (q *unwritableQueue) event(e string) {
	q.mu.Lock()
	q.events = append(q.events, e)
	q.mu.Unlock()
}

func (q *unwritableQueue) Lease(ctx context.Context) (*queue.Lease, error) {
	l, err := q.Queue.Lease(ctx)
	if l != nil {
		q.event("lease")
	}
	return l, err
}

func (q *unwritableQueue) Update(ctx context.Context, l *queue.Lease, id string, rcpt int, r queue.Result) error {
	if q.full.Load() {
		q.failed.Add(1)
		return fmt.Errorf("queue: record result for %s: create segment: %w", id, syscall.ENOSPC)
	}
	if err := q.Queue.Update(ctx, l, id, rcpt, r); err != nil {
		return err
	}
	q.event("recorded " + statusWord(r.State))
	return nil
}

// openQueue opens a real queue in a temporary spool, closed when the test
// ends.
func openQueue(t *testing.T) *queue.Queue {
	t.Helper()
	cfg := queue.DefaultConfig(t.TempDir())
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := queue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// TestUnrecordedOutcomesPauseDelivery: while outcomes cannot be recorded,
// the agent sends nothing more (each worker's first message went out, its
// "sent" is kept), retries with backoff instead of spinning, logs the
// episode twice, and once the queue writes again records the kept
// outcomes before it leases anything; every message arrives exactly once.
func TestUnrecordedOutcomesPauseDelivery(t *testing.T) {
	s, rt := startSink(t, sink.Options{})
	qq := openQueue(t)
	q := &unwritableQueue{Queue: qq}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 6
	for i := range n {
		// Two next hops, so that both workers hold a lease.
		env := &smtp.Envelope{From: smtp.Path{LocalPart: "s", Domain: "origin.example"},
			Rcpts: []smtp.Recipient{{Addr: smtp.Path{LocalPart: "r", Domain: []string{"a.test", "b.test"}[i%2]}}}}
		body := fmt.Sprintf("Subject: message %d\r\n\r\nbody\r\n", i)
		if _, err := qq.Put(ctx, env, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	q.full.Store(true)
	a, logs := testAgent(t, q, rt, func(c *Config) { c.Workers = 2; c.PollInterval = 10 * time.Millisecond })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()

	// Both workers send one message each, then retry with backoff: the
	// retries at 1 s and 3 s make four failed updates at least.
	testrelay.WaitFor(t, "four failed updates", func() bool { return q.failed.Load() >= 4 })
	sent := len(s.Messages())
	if sent < 1 || sent > 2 {
		t.Fatalf("%d messages sent while outcomes could not be recorded, want 1 or 2 (one per worker at most)", sent)
	}
	if f := q.failed.Load(); f > 8 {
		t.Errorf("%d failed updates in a few seconds: the agent does not back off", f)
	}
	q.full.Store(false)
	if _, err := s.Wait(ctx, n); err != nil {
		t.Fatal(err)
	}
	testrelay.WaitFor(t, "the queue to drain", func() bool { return qq.Stats().Messages == 0 })
	stop()
	<-done

	seen := map[string]int{}
	re := regexp.MustCompile(`Subject: message (\d+)`)
	for _, m := range s.Messages() {
		seen[string(re.Find(m.Data))]++
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%q arrived %d times, want once", k, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct messages arrived, want %d", len(seen), n)
	}
	// The kept outcomes come first: the first lease after the pause
	// follows them.
	q.mu.Lock()
	events := append([]string(nil), q.events...)
	q.mu.Unlock()
	firstLeases := 0
	for firstLeases < len(events) && events[firstLeases] == "lease" {
		firstLeases++
	}
	for i := firstLeases; i < firstLeases+sent && i < len(events); i++ {
		if events[i] != "recorded sent" {
			t.Errorf("after the pause, event %d is %q, want the kept outcomes first: %v", i, events[i], events)
			break
		}
	}
	log := logs.String()
	if c := strings.Count(log, "deliver: outcomes cannot be recorded"); c != 1 {
		t.Errorf("pause logged %d times, want once:\n%s", c, log)
	}
	if c := strings.Count(log, "deliver: pending outcomes recorded"); c != 1 {
		t.Errorf("resume logged %d times, want once:\n%s", c, log)
	}
}
