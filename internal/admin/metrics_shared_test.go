package admin

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/pgtest"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/pgqueue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
	"github.com/ferrymta/ferry/internal/smtp"
)

// sharedNode is one relay of a test cluster: its shared queue, its metrics
// and its admin API's address.
type sharedNode struct {
	q    *pgqueue.Queue
	addr string
}

// startSharedNodes opens two nodes on one fresh database of a private
// PostgreSQL cluster, each with its metrics behind an admin API.
func startSharedNodes(t *testing.T) (*pgtest.Cluster, [2]sharedNode) {
	t.Helper()
	c := pgtest.ForTest(t)
	url, err := c.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var nodes [2]sharedNode
	for i, name := range []string{"node-a", "node-b"} {
		q, err := pgqueue.Open(context.Background(), pgqueue.Config{URL: url, Node: name, Logger: discardLogger(),
			StatsInterval: time.Nanosecond, RetryInitial: time.Hour, OpTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		m := NewMetrics()
		m.SetNode(name, "postgres")
		_, addr := startAdmin(t, Options{Queue: q, Metrics: m, Logger: discardLogger()})
		nodes[i] = sharedNode{q: q, addr: addr}
	}
	return c, nodes
}

// TestMetricsSharedQueue: with the shared queue each relay exports its own
// figures labelled with its node name, and the cluster's totals, read from
// the database, under ferry_cluster_* names: the same on both relays, so
// the union of two scrapes has no clashing per-node series. The queue is
// not walked (no ferry_queue_messages).
func TestMetricsSharedQueue(t *testing.T) {
	_, nodes := startSharedNodes(t)
	a, b := nodes[0].q, nodes[1].q
	ctx := context.Background()
	queuetest.Put(t, a, queuetest.Env("s@example.org", "r1@one.example"), queuetest.Body("1", 100))
	held := queuetest.Put(t, b, queuetest.Env("s@example.org", "r2@two.example"), queuetest.Body("2", 100))
	deferred := queuetest.Put(t, b, queuetest.Env("s@example.org", "r3@three.example", "r4@three.example"), queuetest.Body("3", 100))
	if err := a.Hold(ctx, held); err != nil {
		t.Fatal(err)
	}
	// B defers both recipients of one message, then holds a lease on the
	// message of one.example.
	var keep *queue.Lease
	for done := false; keep == nil || !done; {
		l := queuetest.Lease(t, b)
		switch l.Hop {
		case "three.example":
			for _, r := range []int{0, 1} {
				if err := b.Update(ctx, l, deferred, r, queue.Result{State: queue.Deferred, Reply: smtp.NewReply(451, "4.3.0", "later")}); err != nil {
					t.Fatal(err)
				}
			}
			b.Release(l)
			done = true
		case "one.example":
			keep = l
		default:
			t.Fatalf("leased %s", l.Hop)
		}
	}
	defer b.Release(keep)
	sa, sb := scrape(t, nodes[0].addr), scrape(t, nodes[1].addr)
	for _, want := range []struct {
		key  string
		a, b float64
	}{
		{series("ferry_node_info", "node=node-a", "backend=postgres"), 1, -1},
		{series("ferry_node_info", "node=node-b", "backend=postgres"), -1, 1},
		{series("ferry_queue_leases", "node=node-a"), 0, -1},
		{series("ferry_queue_leases", "node=node-b"), -1, 1},
		{series("ferry_cluster_queue_size"), 3, 3},
		{series("ferry_cluster_queue_messages", "state=active"), 1, 1},
		{series("ferry_cluster_queue_messages", "state=held"), 1, 1},
		{series("ferry_cluster_queue_messages", "state=deferred"), 1, 1},
		{series("ferry_cluster_queue_recipients", "state=pending"), 2, 2},
		{series("ferry_cluster_queue_recipients", "state=deferred"), 2, 2},
		{series("ferry_cluster_leases", "node=node-b", "state=live"), 1, 1},
		{series("ferry_cluster_leases", "node=node-b", "state=expired"), 0, 0},
		{series("ferry_cluster_stats_up"), 1, 1},
	} {
		for _, side := range []struct {
			name string
			got  map[string]float64
			want float64
		}{{"node-a", sa, want.a}, {"node-b", sb, want.b}} {
			v, ok := side.got[want.key]
			switch {
			case side.want < 0 && ok:
				t.Errorf("%s exports %s = %v: another node's series", side.name, want.key, v)
			case side.want >= 0 && (!ok || v != side.want):
				t.Errorf("%s: %s = %v (exported %v), want %v", side.name, want.key, v, ok, side.want)
			}
		}
	}
	for _, s := range []map[string]float64{sa, sb} {
		if v := s[series("ferry_cluster_queue_bytes")]; v <= 0 {
			t.Errorf("ferry_cluster_queue_bytes = %v", v)
		}
		for k := range s {
			if strings.HasPrefix(k, "ferry_queue_messages") || strings.HasPrefix(k, "ferry_queue_size") {
				t.Errorf("shared queue exports %s (a walk of the whole queue, duplicated on every node)", k)
			}
		}
	}
	// Every ferry_cluster_* family the documentation lists is exported.
	doc, err := os.ReadFile("../../docs/admin-api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := regexp.MustCompile("(?m)^\\| `(ferry_cluster_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(documented) < 8 {
		t.Fatalf("docs/admin-api.md lists %d ferry_cluster_* metrics", len(documented))
	}
	for _, d := range documented {
		found := false
		for k := range sa {
			found = found || k == d[1] || strings.HasPrefix(k, d[1]+"{")
		}
		if !found {
			t.Errorf("%s is documented but not exported with the shared queue", d[1])
		}
	}
}

// TestMetricsSharedQueueDatabaseDown: when the database does not answer, a
// scrape still answers: ferry_cluster_stats_up is 0 and the last totals
// read stay, with their age.
func TestMetricsSharedQueueDatabaseDown(t *testing.T) {
	c, nodes := startSharedNodes(t)
	queuetest.Put(t, nodes[0].q, queuetest.Env("s@example.org", "r@example.net"), queuetest.Body("d", 100))
	before := scrape(t, nodes[0].addr)
	if before[series("ferry_cluster_queue_size")] != 1 || before[series("ferry_cluster_stats_up")] != 1 {
		t.Fatalf("before the outage: size %v, up %v", before[series("ferry_cluster_queue_size")], before[series("ferry_cluster_stats_up")])
	}
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.StartServer(); err != nil {
			t.Error(err)
		}
	}()
	during := scrape(t, nodes[0].addr)
	if v := during[series("ferry_cluster_stats_up")]; v != 0 {
		t.Errorf("ferry_cluster_stats_up = %v with the database down, want 0", v)
	}
	if v := during[series("ferry_cluster_queue_size")]; v != 1 {
		t.Errorf("ferry_cluster_queue_size = %v with the database down, want the last value read (1)", v)
	}
	if v := during[series("ferry_queue_writable")]; v != 0 {
		t.Errorf("ferry_queue_writable = %v with the database down", v)
	}
	if _, ok := during[series("ferry_cluster_stats_age_seconds")]; !ok {
		t.Error("no ferry_cluster_stats_age_seconds")
	}
}
