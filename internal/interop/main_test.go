package interop

import (
	"os"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// ferry is the binary TestMain builds. Its processes end with SIGTERM
// when a test ends, and must stop gracefully.
func ferry() testrelay.Binary {
	b := testrelay.NewBinary("interop")
	b.GracefulStop = true
	return b
}

// TestMain builds the ferry binary once (with -race when the tests run with
// it, so a data race inside "ferry serve" fails the test that triggered
// it).
func TestMain(m *testing.M) {
	os.Exit(ferry().Main(m, testrelay.RaceEnabled()))
}

// startFerry runs "ferry serve" on a free loopback port with a fresh spool
// and the given --route flags, waits until it listens, and stops it when
// the test ends (dumping its log if the test failed). Its Stderr is the
// mail log.
func startFerry(t *testing.T, routes ...string) *testrelay.Proc {
	t.Helper()
	args := []string{"serve", "--listen", "127.0.0.1:0", "--spool", t.TempDir(), "--hostname", "ferry.test"}
	for _, r := range routes {
		args = append(args, "--route", r)
	}
	return ferry().Start(t, "ferry serve", args...)
}

// containsAll reports whether s contains every one of parts.
func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
