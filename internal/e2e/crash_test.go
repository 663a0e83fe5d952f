package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestCrashWhileDelivering: 50 messages wait for a hop that is down; the
// hop comes up (deferring its first 10 recipients, so some messages are
// still queued whatever happens), Ferry is killed with SIGKILL as soon as
// five messages have arrived, and restarted on the same spool. In the end
// every message must have arrived at least once (RFC 5321 §4.1.1.4: the
// 250 after DATA is a promise); duplicates are reported, not failed.
func TestCrashWhileDelivering(t *testing.T) {
	t.Parallel()
	const n = 50
	cfg := `
[queue]
retry_initial = "1s"
retry_max = "2s"
hop_concurrency = 2
`
	addr := freePort(t)
	r1 := startRelay(t, cfg, "", routeAll(addr))
	base := testrelay.ReadTestdata(t, "forwarded-message.eml")
	c := testrelay.Dial(t, r1.Addr)
	for i := 0; i < n; i++ {
		c.SendID(sender, []string{"user@example.com"}, "BODY=8BITMIME", numbered(base, i))
	}
	c.Quit()

	h := startSink(t, addr, "--reply", "RCPT#10:*=451 4.3.0 slow down")
	deadline := time.Now().Add(testrelay.WaitLimit)
	for h.count(t) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("no message reached the hop within %v", testrelay.WaitLimit)
		}
		time.Sleep(time.Millisecond)
	}
	r1.Kill(t, syscall.SIGKILL)
	atKill := h.count(t)
	sentLogged := len(r1.LogLines("status=sent"))
	t.Logf("SIGKILL with %d of %d messages at the hop (%d status=sent lines logged)", atKill, n, sentLogged)
	if atKill >= n {
		t.Fatalf("all %d messages arrived before the kill: the crash was not exercised", n)
	}

	r2 := startRelay(t, cfg, r1.spool, routeAll(addr))
	recovered := r2.WaitLog(t, "queue recovered")
	// "messages=N" counts the messages the restarted relay found on disk.
	recoveredMsgs := -1
	if m := regexp.MustCompile(` messages=(\d+)`).FindStringSubmatch(recovered); m != nil {
		recoveredMsgs, _ = strconv.Atoi(m[1])
	}
	t.Logf("restart: %s", recovered)

	seqs := map[string]int{}
	testrelay.WaitFor(t, fmt.Sprintf("all %d messages at the hop after the restart", n), func() bool {
		seqs = map[string]int{}
		for _, cp := range h.captures(t) {
			seqs[seqOf(cp.data)]++
		}
		return len(seqs) >= n
	})
	if recoveredMsgs >= 0 {
		// Let the restarted relay finish, so the duplicate count is final.
		testrelay.WaitFor(t, fmt.Sprintf("%d recovered messages removed from the queue", recoveredMsgs), func() bool {
			return len(r2.LogLines("msg=removed")) >= recoveredMsgs
		})
		seqs = map[string]int{}
		for _, cp := range h.captures(t) {
			seqs[seqOf(cp.data)]++
		}
	} else {
		t.Errorf("no messages=N in the recovery line %q", recovered)
	}
	lost, dups, dupSeqs := lostAndDuplicates(n, seqs)
	for k := range seqs {
		if i, err := strconv.Atoi(k); err != nil || i < 0 || i >= n {
			t.Errorf("unexpected message at the hop: X-E2E-Seq %q", k)
		}
	}
	t.Logf("crash safety: %d messages, %d at the hop at SIGKILL, %d found in the spool at restart, %d lost, %d duplicate deliveries %v",
		n, atKill, recoveredMsgs, len(lost), dups, dupSeqs)
	if len(lost) > 0 {
		t.Errorf("lost after SIGKILL and restart: messages %v", lost)
	}
}
