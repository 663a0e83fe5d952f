package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymta/ferry/internal/pgtest"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// longWait bounds waits that last by design: a lease expiring, deliveries
// through a slow hop, a database coming back, on a busy machine.
const longWait = 3 * time.Minute

// sharedDB starts a private PostgreSQL cluster for one test (stopped when it
// ends) and returns it with the URL of a fresh database.
func sharedDB(t *testing.T) (*pgtest.Cluster, string) {
	t.Helper()
	c := pgtest.ForTest(t)
	url, err := c.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c, url
}

// startNode runs "ferry serve" as relay node name on the shared queue at url.
func startNode(t *testing.T, url, name, cfg string, routes ...string) *relay {
	t.Helper()
	flags := []string{"--queue-url", url, "--hostname", name + ".test"}
	for _, r := range routes {
		flags = append(flags, "--route", r)
	}
	return startRelayFlags(t, "[queue]\nnode = \""+name+"\"\n"+cfg, "", flags...)
}

// deliveries counts, per X-E2E-Seq, the captures at h, and per EHLO name
// the relays that delivered them.
func deliveries(t *testing.T, h *hop) (seqs map[string]int, byNode map[string]int) {
	seqs, byNode = map[string]int{}, map[string]int{}
	for _, cp := range h.captures(t) {
		seqs[seqOf(cp.data)]++
		byNode[cp.sc.Helo]++
	}
	return seqs, byNode
}

// lostAndDuplicates checks n numbered messages against seqs.
func lostAndDuplicates(n int, seqs map[string]int) (lost []string, dups int, dupSeqs []string) {
	for i := 0; i < n; i++ {
		k := strconv.Itoa(i)
		switch c := seqs[k]; {
		case c == 0:
			lost = append(lost, k)
		case c > 1:
			dups += c - 1
			dupSeqs = append(dupSeqs, fmt.Sprintf("%s×%d", k, c))
		}
	}
	sort.Strings(dupSeqs)
	return lost, dups, dupSeqs
}

// TestSharedQueueThreeNodes: three relays on one PostgreSQL queue take one
// load between them (messages submitted round-robin, delivered by whichever
// node leases them); every message arrives exactly once (no failure, so no
// duplicate), and every node took part.
func TestSharedQueueThreeNodes(t *testing.T) {
	t.Parallel()
	_, url := sharedDB(t)
	h := startSink(t, "127.0.0.1:0")
	var nodes []*relay
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		nodes = append(nodes, startNode(t, url, name, "", routeAll(h.Addr)))
	}
	const n = 90
	base := testrelay.ReadTestdata(t, "forwarded-message.eml")
	clients := make([]*testrelay.Client, len(nodes))
	for i, r := range nodes {
		clients[i] = testrelay.Dial(t, r.Addr)
	}
	for i := 0; i < n; i++ {
		clients[i%len(nodes)].SendID(sender, []string{fmt.Sprintf("user%d@example.com", i%7)}, "BODY=8BITMIME", numbered(base, i))
	}
	for _, c := range clients {
		c.Quit()
	}
	testrelay.WaitWithin(t, longWait, fmt.Sprintf("%d messages at the hop", n), func() bool { return h.count(t) >= n })
	seqs, byNode := deliveries(t, h)
	lost, dups, dupSeqs := lostAndDuplicates(n, seqs)
	t.Logf("three nodes, one queue: %d messages, delivered per node %v, %d lost, %d duplicates %v", n, byNode, len(lost), dups, dupSeqs)
	if len(lost) > 0 || dups > 0 {
		t.Errorf("lost %v, duplicates %v", lost, dupSeqs)
	}
	// Every node finished its share: the queue is empty from any node.
	for _, r := range nodes {
		testrelay.WaitWithin(t, longWait, "an empty queue seen from "+r.Name, func() bool {
			out, _, code := ferry().Run(t, "queue", "--spool", r.spool, "list")
			return code == 0 && strings.Contains(out, "Queue is empty")
		})
	}
}

// TestSharedQueueKillNode: node A delivers to a slow hop and is killed with
// SIGKILL while it holds the hop's only lease (hop_concurrency = 1 across the
// cluster); node B takes the work over once A's lease expires, within the
// lease time. Every accepted message is delivered; duplicates (messages the
// hop kept while A died before recording them) are counted and reported.
func TestSharedQueueKillNode(t *testing.T) {
	t.Parallel()
	_, url := sharedDB(t)
	const leaseTimeout = 5 * time.Second
	cfg := fmt.Sprintf("lease_timeout = %q\nhop_concurrency = 1\nretry_initial = \"1s\"\nretry_max = \"2s\"\n", leaseTimeout.String())
	h := startSink(t, "127.0.0.1:0", "--delay", "200ms")
	a := startNode(t, url, "node-a", cfg, routeAll(h.Addr))
	const n = 60
	base := testrelay.ReadTestdata(t, "forwarded-message.eml")
	c := testrelay.Dial(t, a.Addr)
	for i := 0; i < n; i++ {
		c.SendID(sender, []string{"user@example.com"}, "BODY=8BITMIME", numbered(base, i))
	}
	c.Quit()

	db, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	// Wait until A, alone, holds a lease with at least 25 messages still
	// to deliver (5 s of work at the slow hop; one of A's first two leases
	// carries that many, as a lease takes at most 32), and has delivered a
	// few; only then does B start. B's workers are woken by every Release,
	// so with B running the lease may change hands at any Release: A must
	// be killed during a long lease for the takeover to wait for expiry.
	testrelay.WaitWithin(t, longWait, "node-a delivering under a long lease", func() bool {
		var leased int
		err := db.QueryRow(context.Background(), `SELECT count(*) FROM ferry_groups WHERE lease_node = 'node-a' AND lease_until > now()`).Scan(&leased)
		_, byNode := deliveries(t, h)
		return err == nil && leased >= 25 && byNode["node-a.test"] >= 2
	})
	b := startNode(t, url, "node-b", cfg, routeAll(h.Addr))
	out, _, _ := ferry().Run(t, "queue", "--spool", b.spool, "list")
	if !strings.Contains(out, "leased by node-a") {
		t.Errorf("ferry queue list on node-b does not show node-a's lease:\n%s", out)
	}
	var live int
	_ = db.QueryRow(context.Background(), `SELECT count(*) FROM ferry_leases WHERE node = 'node-a' AND expires > now()`).Scan(&live)
	a.Kill(t, syscall.SIGKILL)
	killed := time.Now()
	_, atKill := deliveries(t, h)
	t.Logf("SIGKILL of node-a with %d messages at the hop (%v), node-a holding %d live lease(s)", h.count(t), atKill, live)

	var takeover time.Duration
	testrelay.WaitWithin(t, longWait, "node-b delivering after the kill", func() bool {
		_, byNode := deliveries(t, h)
		if byNode["node-b.test"] > atKill["node-b.test"] {
			takeover = time.Since(killed)
			return true
		}
		return false
	})
	testrelay.WaitWithin(t, longWait, fmt.Sprintf("all %d messages at the hop", n), func() bool {
		seqs, _ := deliveries(t, h)
		lost, _, _ := lostAndDuplicates(n, seqs)
		return len(lost) == 0
	})
	testrelay.WaitWithin(t, longWait, "an empty queue", func() bool {
		var left int
		return db.QueryRow(context.Background(), `SELECT count(*) FROM ferry_messages`).Scan(&left) == nil && left == 0
	})
	seqs, byNode := deliveries(t, h)
	lost, dups, dupSeqs := lostAndDuplicates(n, seqs)
	t.Logf("kill -9 takeover: lease timeout %v, node-b delivered %v after the kill; %d messages, per node %v, %d lost, %d duplicate deliveries %v",
		leaseTimeout, takeover.Round(10*time.Millisecond), n, byNode, len(lost), dups, dupSeqs)
	if len(lost) > 0 {
		t.Errorf("lost after the kill: %v", lost)
	}
	// A's lease lasts at most leaseTimeout after its last heartbeat; B
	// wakes at the expiry. The slack is for this busy machine.
	if takeover > leaseTimeout+30*time.Second {
		t.Errorf("takeover took %v, lease timeout %v", takeover, leaseTimeout)
	}
	// At most the messages A had handed to the hop without recording the
	// outcome can come twice: one per lease (hop_concurrency 1).
	if dups > 1 {
		t.Errorf("%d duplicates, want at most 1 (the message in flight at the kill): %v", dups, dupSeqs)
	}
}

// TestSharedQueueDatabaseDown: the database stops under a running relay;
// new mail is refused with 4xx (never 5xx, never a 250 that is not stored);
// when the database returns the relay accepts again and delivers every
// message it accepted.
func TestSharedQueueDatabaseDown(t *testing.T) {
	t.Parallel()
	cluster, url := sharedDB(t)
	h := startSink(t, "127.0.0.1:0")
	r := startNode(t, url, "node-a", "retry_initial = \"1s\"\nretry_max = \"2s\"\n", routeAll(h.Addr))
	base := testrelay.ReadTestdata(t, "forwarded-message.eml")
	var accepted []int
	seq := 0
	send := func() testrelay.Reply {
		c := testrelay.Dial(t, r.Addr)
		defer c.Conn.Close()
		c.Expect(250, c.Cmd("MAIL FROM:<%s> BODY=8BITMIME", sender))
		c.Expect(250, c.Cmd("RCPT TO:<user@example.com>"))
		rep := c.Data(numbered(base, seq))
		if rep.Code == 250 {
			accepted = append(accepted, seq)
		}
		seq++
		return rep
	}
	for range 5 {
		if rep := send(); rep.Code != 250 {
			t.Fatalf("before the outage: %v", rep)
		}
	}
	testrelay.WaitWithin(t, longWait, "5 messages at the hop", func() bool { return h.count(t) >= 5 })

	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rep := send()
		if rep.Code/100 != 4 {
			t.Errorf("with the database down: %v, want 4xx", rep)
		}
	}
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	// The pool reconnects: a new message is accepted again.
	testrelay.WaitWithin(t, longWait, "a 250 after the database returned", func() bool {
		return send().Code == 250
	})
	for range 4 {
		if rep := send(); rep.Code != 250 {
			t.Errorf("after the outage: %v", rep)
		}
	}
	testrelay.WaitWithin(t, longWait, "every accepted message at the hop", func() bool {
		seqs, _ := deliveries(t, h)
		for _, s := range accepted {
			if seqs[strconv.Itoa(s)] == 0 {
				return false
			}
		}
		return true
	})
	seqs, _ := deliveries(t, h)
	extra := 0
	for k := range seqs {
		i, _ := strconv.Atoi(k)
		found := false
		for _, s := range accepted {
			found = found || s == i
		}
		if !found {
			extra++
		}
	}
	t.Logf("database outage: %d sessions, %d accepted and delivered, %d refused with 4xx, %d delivered though refused", seq, len(accepted), seq-len(accepted), extra)
	if extra > 0 {
		t.Logf("note: a message refused with 4xx but committed (COMMIT outcome unknown to the relay) is delivered; the client's retry then makes a duplicate")
	}
}
