package pgqueue

import (
	"context"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
	"github.com/ferrymta/ferry/internal/smtp"
)

// waitState polls cond (a state of the queue, never a clock) for up to a
// minute.
func waitState(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSharedStats: the cluster totals count every node's messages by state
// and the leases per node, and are the same seen from either node.
func TestSharedStats(t *testing.T) {
	a, b := twoNodes(t, Config{StatsInterval: time.Nanosecond, RetryInitial: time.Hour})
	ctx := context.Background()
	deferred := queuetest.Put(t, a, queuetest.Env("s@example.org", "d1@deferred.example", "d2@deferred.example"), queuetest.Body("d", 100))
	held := queuetest.Put(t, b, queuetest.Env("s@example.org", "h@held.example"), queuetest.Body("h", 100))
	queuetest.Put(t, b, queuetest.Env("s@example.org", "p@pending.example"), queuetest.Body("p", 100))
	if err := a.Hold(ctx, held); err != nil {
		t.Fatal(err)
	}
	// A defers one of the two recipients of the first message and releases
	// the lease; B then leases the pending message and keeps it.
	var la *queue.Lease
	for la == nil || la.Hop != "deferred.example" {
		if la != nil {
			a.Release(la)
		}
		la = queuetest.Lease(t, a)
	}
	if err := a.Update(ctx, la, deferred, 0, queue.Result{State: queue.Deferred, Reply: smtp.NewReply(451, "4.3.0", "later")}); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, la, deferred, 1, queue.Result{State: queue.Deferred, Reply: smtp.NewReply(451, "4.3.0", "later")}); err != nil {
		t.Fatal(err)
	}
	a.Release(la)
	lb := queuetest.Lease(t, b)
	if lb.Hop != "pending.example" {
		t.Fatalf("B leased %s, want pending.example", lb.Hop)
	}
	for _, q := range []*Queue{a, b} {
		st, err := q.SharedStats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Messages != 3 || st.Held != 1 || st.Deferred != 1 || st.Active != 1 {
			t.Errorf("%s: messages %d (held %d, deferred %d, active %d), want 3 (1, 1, 1)", q.Node(), st.Messages, st.Held, st.Deferred, st.Active)
		}
		if st.PendingRcpts != 2 || st.DeferredRcpts != 2 {
			t.Errorf("%s: recipients pending %d, deferred %d; want 2 and 2", q.Node(), st.PendingRcpts, st.DeferredRcpts)
		}
		if st.Oldest.IsZero() || st.Bytes <= 0 || st.Read.IsZero() {
			t.Errorf("%s: oldest %v, bytes %d, read %v", q.Node(), st.Oldest, st.Bytes, st.Read)
		}
		if len(st.Leases) != 1 || st.Leases[0] != (queue.NodeLeases{Node: "node-b", Live: 1}) {
			t.Errorf("%s: leases %+v, want node-b with 1 live", q.Node(), st.Leases)
		}
		if s := q.Stats(); s.Messages != 3 {
			t.Errorf("%s: Stats().Messages = %d", q.Node(), s.Messages)
		}
	}
	if got := b.Stats().Leases; got != 1 {
		t.Errorf("B's own leases %d, want 1", got)
	}
	b.Release(lb)
}

// TestSharedStatsCached: within StatsInterval the totals are not read
// again; a database that stops answering gives an error with the last
// figures.
func TestSharedStatsCached(t *testing.T) {
	a, b := twoNodes(t, Config{StatsInterval: time.Hour})
	first, err := a.SharedStats()
	if err != nil || first.Messages != 0 {
		t.Fatalf("first read: %+v, %v", first, err)
	}
	queuetest.Put(t, b, queuetest.Env("s@example.org", "r@example.net"), queuetest.Body("c", 100))
	again, err := a.SharedStats()
	if err != nil || !again.Read.Equal(first.Read) || again.Messages != 0 {
		t.Errorf("second read within the interval: %+v, %v; want the cached figures", again, err)
	}
	a.statsMu.Lock()
	a.statsAt = time.Time{} // the interval has passed
	a.statsMu.Unlock()
	if st, err := a.SharedStats(); err != nil || st.Messages != 1 {
		t.Errorf("read after the interval: %+v, %v", st, err)
	}
}

// TestFullHopWaitsForRelease: a node whose probe finds the only due work
// behind a hop at its cluster-wide limit waits for the NOTIFY of a Release
// (or the lease's expiry), not for a poll; the Release then wakes it.
func TestFullHopWaitsForRelease(t *testing.T) {
	a, b := twoNodes(t, Config{HopConcurrency: 1, LeaseTimeout: 5 * time.Minute})
	queuetest.Put(t, a, queuetest.Env("s@example.org", "r1@example.net"), queuetest.Body("1", 100))
	la := queuetest.Lease(t, a)
	queuetest.Put(t, a, queuetest.Env("s@example.org", "r2@example.net"), queuetest.Body("2", 100))
	done := make(chan *queue.Lease, 1)
	go func() {
		l, _ := b.Lease(context.Background())
		done <- l
	}()
	var until time.Time
	waitState(t, "B idle after a probe", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		until = b.idleUntil
		return b.idleSet && b.idleGen == b.gen
	})
	if left := time.Until(until); left < time.Minute {
		t.Errorf("B waits %v before looking again at the full hop, want the lease's expiry (minutes) or a NOTIFY", left)
	}
	a.Release(la)
	select {
	case lb := <-done:
		if lb == nil || lb.Hop != "example.net" {
			t.Fatalf("B's lease after the release: %+v", lb)
		}
		b.Release(lb)
	case <-time.After(time.Minute):
		t.Fatal("B not woken by the release within a minute")
	}
}

// TestIdleWorkersProbeOnce: the idle workers of a node woken together ask
// the database once, not once each.
func TestIdleWorkersProbeOnce(t *testing.T) {
	a, _ := twoNodes(t, Config{LeaseTimeout: 5 * time.Minute})
	const workers = 8
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range workers {
		go func() { _, _ = a.Lease(ctx) }()
	}
	idle := func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.idleSet && a.idleGen == a.gen
	}
	waitState(t, "the workers idle", idle)
	before := a.probes.Load()
	a.mu.Lock()
	gen := a.gen
	a.mu.Unlock()
	if _, err := a.pool.Exec(context.Background(), "SELECT pg_notify($1, 'test')", notifyChannel); err != nil {
		t.Fatal(err)
	}
	waitState(t, "a probe after the NOTIFY", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.gen > gen && a.idleSet && a.idleGen == a.gen
	})
	if n := a.probes.Load() - before; n < 1 || n >= workers {
		t.Errorf("%d probes for one wake-up of %d idle workers, want 1 (a few at most)", n, workers)
	}
}
