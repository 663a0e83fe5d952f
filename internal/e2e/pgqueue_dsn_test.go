package e2e

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// delayReports counts the delay reports (Action: delayed) at h per
// Original-Envelope-Id, and fails t on any other report there.
func delayReports(t *testing.T, h *hop) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, c := range reportsAt(t, h) {
		p := parseReport(t, c.data)
		if len(p.status) < 2 {
			t.Fatalf("report without recipient fields:\n%s", c.data)
		}
		if a := p.status[1].Get("Action"); a != "delayed" {
			t.Fatalf("report with Action %q, want only delay reports:\n%s", a, c.data)
		}
		out[p.status[0].Get("Original-Envelope-Id")]++
	}
	return out
}

// attemptsPerMessage returns the attempts recorded in the shared queue per
// ENVID-numbered message ("msg-N"), read through the queue's tables, and
// the nodes that made them.
func attemptsPerMessage(t *testing.T, db *pgx.Conn, ids map[string]string) (map[string]int, map[string]bool) {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT msg_id, node, count(*) FROM ferry_attempts GROUP BY msg_id, node`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	per, nodes := map[string]int{}, map[string]bool{}
	for rows.Next() {
		var id, node string
		var n int
		if err := rows.Scan(&id, &node, &n); err != nil {
			t.Fatal(err)
		}
		if envid, ok := ids[id]; ok {
			per[envid] += n
			nodes[node] = true
		}
	}
	return per, nodes
}

// TestSharedQueueOneDelayReport: two relays on one shared queue, a next hop
// that defers every recipient, a short delay-warning threshold. Messages go
// in through both relays; one relay is killed with SIGKILL while it holds
// the hop's lease and started again, so the leases move between relays and
// a relay restarts. The sender gets exactly one delay report per message
// for the threshold, however many attempts and relays follow; restarting
// both relays with a second threshold gets exactly one more per message.
func TestSharedQueueOneDelayReport(t *testing.T) {
	t.Parallel()
	_, url := sharedDB(t)
	slow := startSink(t, "127.0.0.1:0", "--reply", "RCPT:*@slow.example=451 4.3.0 try later")
	reports := startSink(t, "127.0.0.1:0")
	routes := []string{routeTo("slow.example", slow.Addr), routeTo("example.net", reports.Addr)}
	// One lease at a time for the slow hop across the cluster, short
	// leases, retries every second or two.
	cfg := func(warn string) string {
		return fmt.Sprintf("hop_concurrency = 1\nlease_timeout = \"3s\"\nretry_initial = \"1s\"\nretry_max = \"2s\"\ndelay_warning = %q\n", warn) +
			"[admin]\nmetrics_listen = \"127.0.0.1:0\"\n"
	}
	a := startNode(t, url, "node-a", cfg("2s"), routes...)
	b := startNode(t, url, "node-b", cfg("2s"), routes...)
	db, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())

	const n = 10
	base := testrelay.ReadTestdata(t, "pure-ascii.eml")
	ids := map[string]string{} // queue ID → ENVID
	send := func(r *relay, from, to int) {
		c := testrelay.Dial(t, r.Addr)
		for i := from; i < to; i++ {
			id := c.SendID(sender, []string{fmt.Sprintf("x%d@slow.example", i), fmt.Sprintf("y%d@slow.example", i)},
				fmt.Sprintf("ENVID=msg-%d", i), numbered(base, i))
			ids[id] = fmt.Sprintf("msg-%d", i)
		}
		c.Quit()
	}
	allReported := func(from, to, want int) func() bool {
		return func() bool {
			got := delayReports(t, reports)
			for i := from; i < to; i++ {
				if got[fmt.Sprintf("msg-%d", i)] < want {
					return false
				}
			}
			return true
		}
	}

	// The first half through both relays; their delay reports arrive.
	send(a, 0, n/4)
	send(b, n/4, n/2)
	testrelay.WaitWithin(t, longWait, "delay reports for the first half", allReported(0, n/2, 1))

	// The second half; node-a is killed while it holds the hop's lease and
	// started again under its name: its lease expires and moves.
	send(b, n/2, 3*n/4)
	send(a, 3*n/4, n)
	testrelay.WaitWithin(t, longWait, "node-a holding the slow hop's lease", func() bool {
		var held int
		err := db.QueryRow(context.Background(), `SELECT count(*) FROM ferry_leases WHERE node = 'node-a' AND hop = 'slow.example' AND expires > now()`).Scan(&held)
		return err == nil && held > 0
	})
	a.Kill(t, syscall.SIGKILL)
	a = startNode(t, url, "node-a", cfg("2s"), routes...)
	testrelay.WaitWithin(t, longWait, "delay reports for every message", allReported(0, n, 1))

	// Every message is tried at least three more times, on any relay,
	// after its report: none gets a second one.
	settle := func(what string) map[string]int {
		t.Helper()
		start, _ := attemptsPerMessage(t, db, ids)
		var nodes map[string]bool
		testrelay.WaitWithin(t, longWait, what, func() bool {
			var now map[string]int
			now, nodes = attemptsPerMessage(t, db, ids)
			for _, envid := range ids {
				if now[envid] < start[envid]+3*2 { // two recipients per message
					return false
				}
			}
			return true
		})
		t.Logf("%s: attempts by %v", what, keys(nodes))
		return delayReports(t, reports)
	}
	got := settle("three more attempts per message")
	check := func(got map[string]int, want int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if c := got[fmt.Sprintf("msg-%d", i)]; c != want {
				t.Errorf("msg-%d: %d delay reports, want %d", i, c, want)
			}
		}
		if len(got) != n {
			t.Errorf("delay reports for %d envelope IDs %v, want %d", len(got), got, n)
		}
	}
	check(got, 1)
	_, nodes := attemptsPerMessage(t, db, ids)
	if !nodes["node-a"] || !nodes["node-b"] {
		t.Errorf("attempts by %v, want both relays", keys(nodes))
	}
	// Each relay's metrics name it, and carry the cluster's totals.
	for _, r := range []struct {
		name string
		r    *relay
	}{{"node-a", a}, {"node-b", b}} {
		url := "http://" + r.r.stdoutValue(t, "ferry serve: metrics on ")
		if v := metricValue(t, url, `ferry_node_info{backend="postgres",node="`+r.name+`"}`); v != 1 {
			t.Errorf("%s: ferry_node_info for itself = %v, want 1", r.name, v)
		}
		if v := metricValue(t, url, "ferry_cluster_queue_size"); v < n {
			t.Errorf("%s: ferry_cluster_queue_size = %v, want at least the %d deferred messages", r.name, v, n)
		}
		if v := metricValue(t, url, "ferry_cluster_stats_up"); v != 1 {
			t.Errorf("%s: ferry_cluster_stats_up = %v", r.name, v)
		}
	}

	// A second threshold: one more report per message, once.
	a.Stop(t)
	b.Stop(t)
	startNode(t, url, "node-a", cfg("3s"), routes...)
	startNode(t, url, "node-b", cfg("3s"), routes...)
	testrelay.WaitWithin(t, longWait, "a report per message for the second threshold", allReported(0, n, 2))
	check(settle("three more attempts per message after the second threshold"), 2)
}

// keys returns the keys of m, sorted.
func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
