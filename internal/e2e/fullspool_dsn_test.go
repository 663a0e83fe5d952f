package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestFullSpoolReports fills the spool of "ferry serve" (a 4 MiB tmpfs
// that another file fills) until new mail is refused with 452 4.3.1, with
// messages that the next hop defers; then the hop rejects a third of them
// for good. Every failed message must get its failure report: the first ones
// out of the reserve (whole, then with the original's header only), the
// rest once space returns, their failed messages kept queued meanwhile
// ("dsn-deferred"), never dropped ("dsn-suppressed"). Each sender report
// must reach the hop exactly once.
func TestFullSpoolReports(t *testing.T) {
	t.Parallel()
	mnt := testrelay.MountTmpfs(t, "4m")
	hopAddr := freePort(t)
	h1 := startSink(t, hopAddr, "--reply", "RCPT:*@slow.example=451 4.3.0 not now", "--reply", "RCPT:*@fail.example=451 4.3.0 not now")
	// Retries an hour apart: only the operator's retry below makes the
	// hop see the messages again, so deferrals do not use up the reserve.
	cfg := "[queue]\nretry_initial = \"1h\"\nretry_max = \"2h\"\nsegment_size = \"1MiB\"\nreserve = \"64KiB\"\n"
	spool := filepath.Join(mnt, "spool")
	r := startRelay(t, cfg, spool, routeAll(h1.Addr))
	testrelay.WaitFor(t, "the prepared next segment", func() bool {
		st, err := os.Stat(filepath.Join(spool, "spare.tmp"))
		return err == nil && st.Size() == 1<<20
	})
	ballast := filepath.Join(mnt, "ballast")
	testrelay.FillDisk(t, ballast)

	base := fillMessage("report on a full spool")
	var failing []string
	c := testrelay.Dial(t, r.Addr)
	var refusal testrelay.Reply
	for i := 0; i < 400 && refusal.Code == 0; i++ {
		rcpt := "user@slow.example"
		if i%3 == 0 { // their whole reports fit in the next segment once space returns
			rcpt = "user@fail.example"
		}
		c.Expect(250, c.Cmd("MAIL FROM:<%s>", sender))
		c.Expect(250, c.Cmd("RCPT TO:<%s>", rcpt))
		rep := c.Data(numbered(base, i))
		if rep.Code != 250 {
			refusal = rep
			break
		}
		if rcpt == "user@fail.example" {
			_, id, _ := strings.Cut(rep.Text(), "queued as ")
			failing = append(failing, strings.Fields(id)[0])
		}
	}
	c.Quit()
	if refusal.Code != 452 || !strings.HasPrefix(refusal.Text(), "4.3.1") {
		t.Fatalf("after %d messages to fail.example the spool was not full: last reply %v, want 452 4.3.1", len(failing), refusal)
	}
	for _, id := range failing {
		r.WaitLog(t, id, "status=deferred")
	}

	// The hop now rejects fail.example for good; the operator retries
	// those messages at once.
	h1.Stop(t)
	h2 := startSink(t, hopAddr, "--reply", "RCPT:*@fail.example=550 5.1.1 no such user")
	if out, errOut, code := ferry().Run(t, "queue", "--spool", spool, "retry", "--hop", "fail.example"); code != 0 {
		t.Fatalf("ferry queue retry --hop fail.example: exit %d\n%s%s", code, out, errOut)
	}
	for _, id := range failing {
		r.WaitLog(t, id, "status=bounced")
	}
	last := failing[len(failing)-1]
	testrelay.WaitFor(t, "the last failure's report to be queued or deferred", func() bool {
		return len(r.LogLines("msg=dsn ", "id="+last)) > 0 || len(r.LogLines("msg=dsn-deferred", "id="+last)) > 0
	})
	deferred := r.LogLines("msg=dsn-deferred")
	t.Logf("%d failures on a full spool: %d reports queued at once (%d with the header only), %d deferred",
		len(failing), len(r.LogLines("msg=dsn ")), len(r.LogLines("msg=dsn ", "returned=")), len(deferred))
	if len(deferred) == 0 {
		t.Errorf("all %d reports of about 20 KiB fitted in half of a 64 KiB reserve; the test no longer reaches the full reserve", len(failing))
	}
	if len(r.LogLines("msg=dsn ")) == 0 {
		t.Errorf("no report was queued from the reserve")
	}

	// Space returns: every owed report is queued by itself.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for _, id := range failing {
		r.WaitLog(t, "msg=dsn ", "id="+id)
	}
	if s := r.LogLines("dsn-suppressed"); len(s) > 0 {
		t.Errorf("reports dropped:\n%s", strings.Join(s, "\n"))
	}
	testrelay.WaitFor(t, fmt.Sprintf("%d reports at the hop", len(failing)), func() bool {
		return len(reportsAt(t, h2)) >= len(failing)
	})
	reports := reportsAt(t, h2)
	for _, id := range failing {
		n := 0
		for _, cp := range reports {
			if bytes.Contains(cp.data, []byte("X-Ferry-Queue-ID: "+id)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d reports about %s at the hop, want 1", n, id)
		}
	}
}
