package queue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// schedQueue opens a queue with a fake clock and no jitter.
func schedQueue(t *testing.T, dir string, clock *fakeClock, mod func(*Config)) *Queue {
	t.Helper()
	cfg := testConfig(dir, clock, nil)
	cfg.Jitter = -1
	if mod != nil {
		mod(&cfg)
	}
	return mustOpen(t, cfg)
}

func mustLease(t *testing.T, q *Queue) *Lease {
	t.Helper()
	l, err := leaseCtx(q, time.Minute) // generous: only a failing test waits
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	return l
}

func noLease(t *testing.T, q *Queue) {
	t.Helper()
	if l, err := leaseCtx(q, 30*time.Millisecond); err == nil {
		t.Fatalf("Lease returned work for %s (%d items), want none", l.Hop, len(l.Items))
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lease: %v", err)
	}
}

func deferred(text string) Result {
	return Result{State: Deferred, Reply: smtp.NewReply(451, "4.3.0", text)}
}

func TestBackoffSchedule(t *testing.T) {
	clock := newFakeClock()
	q := schedQueue(t, t.TempDir(), clock, nil)
	defer q.Close()
	id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(1, 100))
	want := []time.Duration{5, 10, 20, 40, 60, 60}
	for i, d := range want {
		l := mustLease(t, q)
		if l.Hop != "example.net" || len(l.Items) != 1 || l.Items[0].Env.ID != id || l.Items[0].Attempts != i {
			t.Fatalf("attempt %d: lease %+v", i, l)
		}
		if err := q.Update(context.Background(), nil, id, 0, deferred("busy")); err != nil {
			t.Fatal(err)
		}
		q.Release(l)
		info, _ := q.Show(id)
		if got := info.Rcpts[0].Next.Sub(clock.Now()); got != d*time.Minute {
			t.Fatalf("attempt %d: next attempt in %v, want %v", i, got, d*time.Minute)
		}
		clock.Add(d*time.Minute - time.Second)
		noLease(t, q)
		clock.Add(time.Second)
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	q := schedQueue(t, t.TempDir(), newFakeClock(), func(c *Config) { c.Jitter = 0.2 })
	defer q.Close()
	for _, n := range []int{1, 3, 10} {
		base := min(5*time.Minute<<(n-1), time.Hour)
		lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
		seen := map[time.Duration]bool{}
		for i := range 2000 {
			d := q.backoff(n, uint64(i))
			if d < lo || d > hi {
				t.Fatalf("backoff(%d) = %v outside [%v, %v]", n, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Errorf("backoff(%d) took only %d values: no jitter", n, len(seen))
		}
		if a, b := q.backoff(n, 42), q.backoff(n, 42); a != b {
			t.Errorf("backoff(%d) differs for one message and attempt: %v, %v", n, a, b)
		}
	}
}

// eventLog collects events.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (e *eventLog) add(ev Event) {
	e.mu.Lock()
	e.ev = append(e.ev, ev)
	e.mu.Unlock()
}

func (e *eventLog) finished() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.ev {
		if ev.Kind == EventFinished {
			out = append(out, ev)
		}
	}
	return out
}

func TestExpiry(t *testing.T) {
	clock := newFakeClock()
	var events eventLog
	q := schedQueue(t, t.TempDir(), clock, func(c *Config) { c.OnEvent = events.add })
	defer q.Close()
	normal := putBody(t, q, testEnv("s@example.org", "r@slow.example"), bodyFor(1, 100))
	bounce := putBody(t, q, testEnv("<>", "r@slow.example"), bodyFor(2, 100))
	l := mustLease(t, q)
	for _, it := range l.Items {
		if err := q.Update(context.Background(), nil, it.Env.ID, 0, deferred("mailbox busy")); err != nil {
			t.Fatal(err)
		}
	}
	q.Release(l)
	if n := len(events.ev); n != 2 || events.ev[0].Kind != EventDelayed {
		t.Fatalf("want 2 delay events, got %d", n)
	}
	// The bounce expires after 24 h, the normal message does not.
	clock.Add(24*time.Hour + time.Second)
	l = mustLease(t, q)
	if len(l.Items) != 1 || l.Items[0].Env.ID != normal {
		t.Fatalf("after 24 h: lease %+v, want only the normal message", l.Items)
	}
	q.Release(l)
	if _, err := q.Show(bounce); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired bounce still queued (err %v)", err)
	}
	fin := events.finished()
	if len(fin) != 1 || fin[0].ID != bounce {
		t.Fatalf("finished events %+v", fin)
	}
	r := fin[0].Rcpts[0]
	if r.State != Failed || !r.Expired || r.LastReply.Enhanced != "4.4.7" ||
		!strings.Contains(r.LastReply.Text(), "expired after 1 day; last reply: 451 4.3.0 mailbox busy") {
		t.Fatalf("expired recipient %+v", r)
	}
	// The normal message expires after 5 days, also via Update.
	clock.Add(96*time.Hour - 2*time.Second)
	l = mustLease(t, q)
	clock.Add(2 * time.Second) // the attempt ends after the lifetime
	if err := q.Update(context.Background(), nil, normal, 0, deferred("still busy")); err != nil {
		t.Fatal(err)
	}
	q.Release(l)
	fin = events.finished()
	if len(fin) != 2 || fin[1].ID != normal || !strings.Contains(fin[1].Rcpts[0].LastReply.Text(), "expired after 5 days; last reply: 451 4.3.0 still busy") {
		t.Fatalf("finished events %+v", fin)
	}
	noLease(t, q)
}

func TestHoldUnholdDurable(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	q := schedQueue(t, dir, clock, nil)
	id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(1, 100))
	if err := q.Hold(context.Background(), id[:6]+"nonsense"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Hold of unknown ID: %v", err)
	}
	full, err := q.Resolve(id[:12])
	if err != nil || full != id {
		t.Fatalf("Resolve: %q %v", full, err)
	}
	if err := q.Hold(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	noLease(t, q)
	q.Close()
	q = schedQueue(t, dir, clock, nil)
	defer q.Close()
	noLease(t, q)
	if info, _ := q.Show(id); !info.Held {
		t.Fatal("hold lost on restart")
	}
	if err := q.Unhold(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if l := mustLease(t, q); l.Items[0].Env.ID != id {
		t.Fatal("wrong message leased")
	}
}

func TestLeaseExpiryReturnsWork(t *testing.T) {
	clock := newFakeClock()
	q := schedQueue(t, t.TempDir(), clock, func(c *Config) { c.LeaseTimeout = 10 * time.Minute })
	defer q.Close()
	id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(1, 100))
	l := mustLease(t, q)
	noLease(t, q)
	clock.Add(10*time.Minute + time.Second)
	l2 := mustLease(t, q)
	if l2.Items[0].Env.ID != id {
		t.Fatal("taken-back work not leased again")
	}
	q.Release(l) // harmless: already taken back
	noLease(t, q)
	// Fencing: the first worker's outcome is refused, the second's wins.
	if err := q.Update(context.Background(), l, id, 0, Result{State: Failed, Reply: smtp.NewReply(550, "5.1.1", "stale")}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("update under the lease taken over: err %v, want ErrLeaseLost", err)
	}
	if l2.Epoch <= l.Epoch {
		t.Errorf("epochs %d then %d: want growing", l.Epoch, l2.Epoch)
	}
	if err := q.Update(context.Background(), l2, id, 0, Result{State: Sent, Reply: smtp.NewReply(250, "2.0.0", "Ok")}); err != nil {
		t.Fatal(err)
	}
	q.Release(l2)
	if _, err := q.Show(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sent message still queued (err %v)", err)
	}
}

func TestHopGroupingAndConcurrency(t *testing.T) {
	clock := newFakeClock()
	q := schedQueue(t, t.TempDir(), clock, func(c *Config) { c.HopConcurrency = 1; c.LeaseMaxItems = 3 })
	defer q.Close()
	for i := range 5 {
		putBody(t, q, testEnv("s@example.org", "x@A.example"), bodyFor(i, 100))
	}
	clock.Add(time.Second)
	putBody(t, q, testEnv("s@example.org", "y@b.example", "z@a.example"), bodyFor(9, 100))
	l1 := mustLease(t, q)
	if l1.Hop != "a.example" || len(l1.Items) != 3 {
		t.Fatalf("first lease: hop %s with %d items, want a.example with 3", l1.Hop, len(l1.Items))
	}
	l2 := mustLease(t, q)
	if l2.Hop != "b.example" || len(l2.Items) != 1 || len(l2.Items[0].Rcpts) != 1 || l2.Items[0].Rcpts[0] != 0 {
		t.Fatalf("second lease: %s %+v", l2.Hop, l2.Items)
	}
	noLease(t, q) // a.example is at its concurrency limit
	q.Release(l1) // unreported: due again at once
	l3 := mustLease(t, q)
	if l3.Hop != "a.example" || len(l3.Items) != 3 {
		t.Fatalf("third lease: hop %s with %d items", l3.Hop, len(l3.Items))
	}
	q.Release(l3)
	q.Release(l2)
}

func TestInFlightDueAfterRestart(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	q := schedQueue(t, dir, clock, nil)
	id := putBody(t, q, testEnv("s@example.org", "r@example.net", "q@example.net"), bodyFor(1, 100))
	l := mustLease(t, q)
	q.Update(context.Background(), nil, id, 0, deferred("later"))
	q.Release(l)
	clock.Add(5 * time.Minute)
	l = mustLease(t, q) // both recipients due; the process dies holding the lease
	if len(l.Items[0].Rcpts) != 2 {
		t.Fatalf("lease %+v", l.Items)
	}
	q.Close()
	q = schedQueue(t, dir, clock, nil)
	defer q.Close()
	l = mustLease(t, q)
	if len(l.Items) != 1 || len(l.Items[0].Rcpts) != 2 || l.Items[0].Attempts != 1 {
		t.Fatalf("after restart: %+v", l.Items)
	}
}

func TestPartialUpdateThenRelease(t *testing.T) {
	clock := newFakeClock()
	var events eventLog
	q := schedQueue(t, t.TempDir(), clock, func(c *Config) { c.OnEvent = events.add })
	defer q.Close()
	id := putBody(t, q, testEnv("s@example.org", "a@example.net", "b@example.net", "c@example.net"), bodyFor(1, 100))
	l := mustLease(t, q)
	q.Update(context.Background(), nil, id, 0, Result{State: Sent, Reply: smtp.NewReply(250, "", "ok")})
	q.Update(context.Background(), nil, id, 1, Result{State: Failed, Reply: smtp.NewReply(550, "5.1.1", "no such user")})
	if err := q.Update(context.Background(), nil, id, 1, Result{State: Sent}); !errors.Is(err, ErrFinal) {
		t.Fatalf("second final update: %v", err)
	}
	q.Release(l)
	l = mustLease(t, q)
	if got := l.Items[0].Rcpts; len(got) != 1 || got[0] != 2 {
		t.Fatalf("after release: rcpts %v, want [2]", got)
	}
	q.Update(context.Background(), nil, id, 2, Result{State: Sent})
	q.Release(l)
	fin := events.finished()
	if len(fin) != 1 || len(fin[0].Rcpts) != 3 || fin[0].Rcpts[1].LastReply.Enhanced != "5.1.1" {
		t.Fatalf("finished events %+v", fin)
	}
	if len(fin[0].Rcpts[1].History) != 1 {
		t.Fatalf("history %+v", fin[0].Rcpts[1].History)
	}
}

// crashBeforeDone leaves in dir a message whose one recipient failed,
// with the process stopped after the finished event and before the done
// record, and returns its ID.
func crashBeforeDone(t *testing.T, dir string, clock *fakeClock) string {
	t.Helper()
	var q *Queue
	var first eventLog
	q = schedQueue(t, dir, clock, func(c *Config) {
		c.OnEvent = func(ev Event) {
			first.add(ev)
			if ev.Kind == EventFinished {
				q.Close() // the process stops before the done record
			}
		}
	})
	id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(1, 100))
	l := mustLease(t, q)
	if err := q.Update(context.Background(), nil, id, 0, Result{State: Failed, Reply: smtp.NewReply(550, "5.1.1", "unknown")}); err != nil {
		t.Fatal(err)
	}
	q.Release(l)
	q.Close()
	if len(first.finished()) != 1 {
		t.Fatal("no finished event")
	}
	return id
}

func TestFinishedEventRepeatedAfterCrash(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	id := crashBeforeDone(t, dir, clock)
	var q *Queue
	var again eventLog
	done := make(chan struct{})
	q = schedQueue(t, dir, clock, func(c *Config) {
		c.OnEvent = func(ev Event) { again.add(ev); close(done) }
	})
	defer q.Close()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("finished event not repeated after restart")
	}
	fin := again.finished()
	if len(fin) != 1 || !fin[0].Recovered || fin[0].ID != id || fin[0].Rcpts[0].LastReply.Enhanced != "5.1.1" {
		t.Fatalf("repeated event %+v", fin)
	}
	// The done record follows the event.
	waitCond(t, "the message removed after its repeated event", func() bool {
		_, err := q.Show(id)
		return errors.Is(err, ErrNotFound)
	})
}

// TestCloseWakesLease: Close ends a Lease call, whether it is already
// waiting or comes after Close (either order must give ErrClosed).
func TestCloseWakesLease(t *testing.T) {
	q := schedQueue(t, t.TempDir(), newFakeClock(), nil)
	errc := make(chan error, 1)
	go func() {
		_, err := q.Lease(context.Background())
		errc <- err
	}()
	q.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Lease after Close: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Lease still blocked after Close")
	}
	if _, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), strings.NewReader("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
}

// TestExpiryReplySecurity: a message that waited for STARTTLS or
// REQUIRETLS the hop never offered fails with the permanent security code
// (DESIGN.md §1: defer 4.7.x, then bounce 5.7.10 / 5.7.30); any other last
// reply gives 4.4.7.
func TestExpiryReplySecurity(t *testing.T) {
	q := schedQueue(t, t.TempDir(), newFakeClock(), nil)
	defer q.Close()
	tests := []struct {
		last       smtp.Reply
		code       int
		enh        smtp.EnhancedCode
		mentioning string
	}{
		{smtp.NewReply(451, "4.7.10", "TLS required by route but next hop does not offer STARTTLS"), 554, "5.7.10", "last reply: 451 4.7.10"},
		{smtp.NewReply(451, "4.7.30", "REQUIRETLS support required"), 554, "5.7.30", "REQUIRETLS"},
		{smtp.NewReply(451, "4.7.5", "certificate verification failed"), 554, "5.7.5", "certificate"},
		{smtp.NewReply(451, "4.3.0", "mailbox busy"), 451, "4.4.7", "mailbox busy"},
		{smtp.Reply{}, 451, "4.4.7", "no delivery attempt was answered"},
	}
	for _, tc := range tests {
		r := q.expiryReply(&msg{}, tc.last)
		if r.Code != tc.code || r.Enhanced != tc.enh || !strings.Contains(r.Text(), tc.mentioning) || !strings.Contains(r.Text(), "expired after 5 days") {
			t.Errorf("expiry after %v: %v", tc.last, r)
		}
	}
}

// TestLeaseRenew: a renewed lease is not taken back at its first expiry;
// Renew of a lease already taken back reports false.
func TestLeaseRenew(t *testing.T) {
	clock := newFakeClock()
	q := schedQueue(t, t.TempDir(), clock, func(c *Config) { c.LeaseTimeout = 10 * time.Minute })
	defer q.Close()
	putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(1, 100))
	l := mustLease(t, q)
	clock.Add(8 * time.Minute)
	if !q.Renew(l) {
		t.Fatal("Renew of a live lease failed")
	}
	if want := clock.Now().Add(10 * time.Minute); !l.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v", l.Expires, want)
	}
	clock.Add(8 * time.Minute) // past the first expiry, within the renewed one
	noLease(t, q)
	clock.Add(3 * time.Minute) // past the renewed expiry
	l2 := mustLease(t, q)
	if q.Renew(l) {
		t.Error("Renew of a lease taken back succeeded")
	}
	q.Release(l2)
}

// TestOfflineLeavesFinishedMessages checks that a queue opened Offline
// (by "ferry queue" while the server is stopped) does not finish a message
// whose recipients are all final: the server's next start still reports
// it (its DSN), so nothing is lost.
func TestOfflineLeavesFinishedMessages(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	id := crashBeforeDone(t, dir, clock)
	off := schedQueue(t, dir, clock, func(c *Config) { c.Offline = true })
	if _, err := off.Show(id); err != nil {
		t.Fatalf("offline Show: %v", err)
	}
	// An administrative change goes through the committer, after
	// anything recovery would have written.
	if err := off.Hold(context.Background(), id); err != nil {
		t.Fatalf("offline Hold: %v", err)
	}
	off.Close()

	var again eventLog
	done := make(chan struct{})
	q := schedQueue(t, dir, clock, func(c *Config) {
		c.OnEvent = func(ev Event) { again.add(ev); close(done) }
	})
	defer q.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the finished message was not reported at the server's start after an offline open")
	}
	if fin := again.finished(); len(fin) != 1 || fin[0].ID != id {
		t.Fatalf("events after the offline open: %+v", fin)
	}
}
