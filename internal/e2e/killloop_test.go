package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// killLoopRoundsEnv sets how many SIGKILLs TestKillLoopDuplicates deals
// (default 3); the duplicate figure of docs/performance.md uses 30.
const killLoopRoundsEnv = "FERRY_KILL_ROUNDS"

// TestKillLoopDuplicates kills a relay with SIGKILL again and again while it
// delivers messages of four recipients each, restarting it on the same
// spool and queueing more each round, then lets the last run drain the
// queue. Every recipient of every message must arrive (RFC 5321 §4.1.1.4);
// recipients delivered twice are counted and reported per kill, since a
// crash between the hop's 250 and the outcome reaching the disk can only
// cause a duplicate.
func TestKillLoopDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("kill loop skipped in -short mode")
	}
	t.Parallel()
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv(killLoopRoundsEnv)); err == nil && v > 0 {
		rounds = v
	}
	const perRound, rcptsPer = 30, 4
	cfg := `
[queue]
retry_initial = "1s"
retry_max = "2s"
hop_concurrency = 4
`
	addr := freePort(t)
	h := startSink(t, addr)
	rcpts := make([]string, rcptsPer)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("user%d@example.com", i)
	}
	base := testrelay.ReadTestdata(t, "forwarded-message.eml")
	spool := ""
	seq := 0
	for round := range rounds {
		r := startRelay(t, cfg, spool, routeAll(addr))
		spool = r.spool
		before := h.count(t)
		c := testrelay.Dial(t, r.Addr)
		for range perRound {
			c.SendID(sender, rcpts, "BODY=8BITMIME", numbered(base, seq))
			seq++
		}
		c.Quit()
		// Kill while deliveries are under way: once a few more
		// transactions have reached the hop.
		want := before + 3
		testrelay.WaitFor(t, fmt.Sprintf("round %d: %d messages at the hop", round, want), func() bool { return h.count(t) >= want })
		r.Kill(t, syscall.SIGKILL)
	}
	last := startRelay(t, cfg, spool, routeAll(addr))
	recovered := last.WaitLog(t, "queue recovered")
	m := regexp.MustCompile(` messages=(\d+)`).FindStringSubmatch(recovered)
	if m == nil {
		t.Fatalf("no messages=N in the recovery line %q", recovered)
	}
	queued, _ := strconv.Atoi(m[1])
	testrelay.WaitFor(t, fmt.Sprintf("%d recovered messages removed from the queue", queued), func() bool {
		return len(last.LogLines("msg=removed")) >= queued
	})
	got := map[string]int{} // "seq rcpt" → deliveries
	for _, cp := range h.captures(t) {
		s := seqOf(cp.data)
		for _, rc := range cp.sc.Rcpts {
			got[s+" "+rc.To]++
		}
	}
	lost, dups := 0, 0
	for i := range seq {
		for _, rc := range rcpts {
			k := strconv.Itoa(i) + " <" + rc + ">"
			switch n := got[k]; {
			case n == 0:
				lost++
				t.Errorf("lost after the kill loop: message %d to %s", i, rc)
			case n > 1:
				dups += n - 1
			}
		}
	}
	t.Logf("kill loop: %d SIGKILLs, %d messages × %d recipients, %d lost, %d duplicate recipient deliveries (%.2f per kill, %.2f %%)",
		rounds, seq, rcptsPer, lost, dups, float64(dups)/float64(rounds), 100*float64(dups)/float64(seq*rcptsPer))
}
