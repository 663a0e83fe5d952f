package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestLogRotation: after the log file is renamed (as logrotate does) and
// ferry serve gets SIGHUP, new lines go to a new file of the configured
// name, and none to the renamed one.
func TestLogRotation(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0")
	logFile := filepath.Join(t.TempDir(), "ferry.log")
	r := startRelay(t, "[log]\nfile = \""+logFile+"\"\n", "", routeAll(h.Addr))
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	first := testrelay.SendOne(t, r.Addr, sender, []string{"a@example.com"}, []byte("Subject: one\r\n\r\nbefore\r\n"))
	testrelay.WaitFor(t, "the first message's removal in the log file", func() bool {
		return strings.Contains(read(logFile), "msg=removed id="+first)
	})
	rotated := logFile + ".1"
	if err := os.Rename(logFile, rotated); err != nil {
		t.Fatal(err)
	}
	if err := r.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testrelay.WaitFor(t, "the reopened log file", func() bool {
		return strings.Contains(read(logFile), "log file reopened")
	})
	second := testrelay.SendOne(t, r.Addr, sender, []string{"b@example.com"}, []byte("Subject: two\r\n\r\nafter\r\n"))
	testrelay.WaitFor(t, "the second message's removal in the new log file", func() bool {
		return strings.Contains(read(logFile), "msg=removed id="+second)
	})
	if old := read(rotated); strings.Contains(old, second) || !strings.Contains(old, first) {
		t.Errorf("the renamed file got lines after SIGHUP (or lost the first message):\n%s", old)
	}
}
