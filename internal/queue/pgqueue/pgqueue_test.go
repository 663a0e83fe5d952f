package pgqueue

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
	"github.com/ferrymta/ferry/internal/smtp"
)

// TestOpenErrors: a malformed URL or an unreachable server is a clear error
// naming the server and never the password.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"postgres://ferry:s3cret@127.0.0.1:1/ferry?connect_timeout=5", `cannot connect to PostgreSQL at 127.0.0.1:1 (database "ferry", user "ferry")`},
		{"postgres://ferry:s3cret@127.0.0.1:notaport/ferry", "is not a PostgreSQL connection URL"},
		{"", "url is required"},
	} {
		_, err := Open(ctx, Config{URL: tc.url, Logger: quiet(), ConnectTimeout: 10 * time.Second})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v, want %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error shows the password: %v", tc.url, err)
		}
	}
}

// TestMigrations: an empty database gets every version; a re-run applies
// none; two nodes opening one fresh database together both succeed; a
// database newer than the build is refused.
func TestMigrations(t *testing.T) {
	ctx := context.Background()
	url := newDB(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	all, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	applied, err := Migrate(ctx, pool)
	if err != nil || len(applied) != len(all) || applied[0] != 1 || applied[len(applied)-1] != SchemaVersion() {
		t.Fatalf("first Migrate applied %v, %v; want 1…%d", applied, err, SchemaVersion())
	}
	if applied, err := Migrate(ctx, pool); err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate applied %v, %v; want none", applied, err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM ferry_schema").Scan(&n); err != nil || n != len(all) {
		t.Fatalf("ferry_schema rows %d, %v", n, err)
	}

	fresh := newDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, err := Open(ctx, Config{URL: fresh, Logger: quiet(), Node: "n"})
			if err == nil {
				q.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d starting together with others: %v", i, err)
		}
	}

	if _, err := pool.Exec(ctx, "INSERT INTO ferry_schema (version, name) VALUES (9999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{URL: url, Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "newer than this ferry") {
		t.Errorf("Open on a newer schema: %v", err)
	}
}

// twoNodes opens two nodes on one fresh database.
func twoNodes(t *testing.T, cfg Config) (*Queue, *Queue) {
	t.Helper()
	cfg.URL = newDB(t)
	a, b := cfg, cfg
	a.Node, b.Node = "node-a", "node-b"
	return openQueue(t, a), openQueue(t, b)
}

// TestTakeoverFencing: node A stalls (no heartbeat) past its lease; node B
// takes the work over; A's late outcome is refused and B's stands.
func TestTakeoverFencing(t *testing.T) {
	a, b := twoNodes(t, Config{LeaseTimeout: time.Second, Heartbeat: -1})
	id := queuetest.Put(t, a, queuetest.Env("s@example.org", "r@example.net"), queuetest.Body("t", 500))
	la := queuetest.Lease(t, a)
	lb := queuetest.Lease(t, b) // waits for A's lease to expire
	if lb.Items[0].Env.ID != id || lb.Node != "node-b" || lb.Epoch <= la.Epoch {
		t.Fatalf("B's lease %+v", lb)
	}
	m, _ := a.Show(id)
	if m.Rcpts[0].LeasedBy != "node-b" {
		t.Errorf("listing from A shows the lease held by %q, want node-b", m.Rcpts[0].LeasedBy)
	}
	if err := a.Update(context.Background(), la, id, 0, queue.Result{State: queue.Failed, Reply: smtp.NewReply(550, "5.0.0", "stale")}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("A's update after takeover: %v", err)
	}
	if a.Renew(la) {
		t.Error("A renewed a lease taken over")
	}
	if err := b.Update(context.Background(), lb, id, 0, queue.Result{State: queue.Sent, Reply: smtp.NewReply(250, "2.0.0", "ok")}); err != nil {
		t.Fatal(err)
	}
	b.Release(lb)
	a.Release(la)
}

// TestHeartbeat: a live node's lease outlasts the lease timeout.
func TestHeartbeat(t *testing.T) {
	a, b := twoNodes(t, Config{LeaseTimeout: time.Second, Heartbeat: 100 * time.Millisecond})
	id := queuetest.Put(t, a, queuetest.Env("s@example.org", "r@example.net"), queuetest.Body("h", 500))
	la := queuetest.Lease(t, a)
	first := la.Expires
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := b.Show(id)
		if err != nil {
			t.Fatal(err)
		}
		if r := m.Rcpts[0]; r.LeasedBy == "node-a" && r.LeaseExpires.After(first.Add(time.Second)) {
			break // renewed past a whole lease timeout
		}
		if time.Now().After(deadline) {
			t.Fatal("lease not renewed by heartbeats")
		}
		time.Sleep(50 * time.Millisecond) // polls a state, bounded
	}
	queuetest.NoLease(t, b, 500*time.Millisecond)
	if !a.Renew(la) {
		t.Error("Renew failed on a heartbeat-kept lease")
	}
	a.Release(la)
}

// TestHopLimitAcrossNodes: hop concurrency counts every node's leases.
func TestHopLimitAcrossNodes(t *testing.T) {
	a, b := twoNodes(t, Config{HopConcurrency: 1})
	queuetest.Put(t, a, queuetest.Env("s@example.org", "r1@example.net"), queuetest.Body("1", 100))
	la := queuetest.Lease(t, a)
	second := queuetest.Put(t, a, queuetest.Env("s@example.org", "r2@example.net"), queuetest.Body("2", 100))
	queuetest.NoLease(t, b, time.Second)
	done := make(chan *queue.Lease)
	go func() {
		l, _ := b.Lease(context.Background())
		done <- l
	}()
	a.Release(la) // the NOTIFY wakes B
	lb := <-done
	if lb == nil || lb.Hop != "example.net" {
		t.Fatalf("B's lease after A released: %+v", lb)
	}
	found := false
	for _, it := range lb.Items {
		found = found || it.Env.ID == second
	}
	if !found {
		t.Error("B's lease lacks the second message")
	}
	b.Release(lb)
}

// TestNotifyWakesIdleNode: an idle node blocked in Lease gets new work at
// once through LISTEN/NOTIFY, far sooner than its fallback wait.
func TestNotifyWakesIdleNode(t *testing.T) {
	a, b := twoNodes(t, Config{LeaseTimeout: 5 * time.Minute})
	got := make(chan *queue.Lease)
	go func() {
		l, _ := b.Lease(context.Background())
		got <- l
	}()
	// Wait until B is idle in Lease (nothing due), then queue on A.
	queuetest.NoLease(t, a, 300*time.Millisecond)
	start := time.Now()
	queuetest.Put(t, a, queuetest.Env("s@example.org", "r@example.net"), queuetest.Body("n", 100))
	select {
	case l := <-got:
		t.Logf("idle node woken after %v", time.Since(start))
		b.Release(l)
	case <-time.After(time.Minute):
		t.Fatal("idle node not woken by NOTIFY within a minute (its fallback wait is 5 minutes)")
	}
}

// TestDelayReportOnceAcrossNodes: of delay reports for one message and
// threshold put at once from two nodes, exactly one is stored; a report the
// database refuses leaves no record that it was made, so a later deferral
// tries again (the report and its record are one commit).
func TestDelayReportOnceAcrossNodes(t *testing.T) {
	a, b := twoNodes(t, Config{})
	id := queuetest.Put(t, a, queuetest.Env("s@example.org", "r@example.net"), queuetest.Body("c", 100))
	ctx := context.Background()
	const tag = "delay:4h0m0s"
	results := make(chan error, 8)
	for i := range 8 {
		q := []*Queue{a, b}[i%2]
		go func() {
			_, err := q.putReported(ctx, id, tag, queuetest.Env("", "s@example.org"), bytes.NewReader(queuetest.Body("r", 300)))
			results <- err
		}()
	}
	stored := 0
	for range 8 {
		switch err := <-results; {
		case err == nil:
			stored++
		case !errors.Is(err, queue.ErrReported):
			t.Fatalf("putReported: %v", err)
		}
	}
	if stored != 1 {
		t.Fatalf("%d delay reports stored for one message and threshold, want 1", stored)
	}
	reports := 0
	if err := b.Walk(queue.Filter{}, func(m *queue.MessageInfo) bool {
		if m.Env.From.IsNull() {
			reports++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if reports != 1 {
		t.Errorf("%d reports queued, want 1", reports)
	}
	// A report that cannot be stored (its ID is taken) is not recorded.
	dup := queuetest.Env("", "s@example.org")
	dup.ID = id
	if _, err := a.putReported(ctx, id, "delay:8h0m0s", dup, bytes.NewReader(queuetest.Body("r", 300))); !errors.Is(err, queue.ErrExists) {
		t.Fatalf("report with a taken ID: %v, want ErrExists", err)
	}
	if made, err := b.reported(id, "delay:8h0m0s"); made || err != nil {
		t.Errorf("refused report recorded as made (%v, %v)", made, err)
	}
	if made, err := b.reported(id, tag); !made || err != nil {
		t.Errorf("stored report not recorded as made (%v, %v)", made, err)
	}
}
