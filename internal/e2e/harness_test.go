package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// ferry is the binary TestMain builds. Its processes get SIGKILL when a
// test ends.
func ferry() testrelay.Binary { return testrelay.NewBinary("e2e") }

// TestMain builds the ferry binary once (with -race when the tests run with
// it, so a data race inside "ferry serve" fails the test that triggered it).
func TestMain(m *testing.M) {
	os.Exit(ferry().Main(m, testrelay.RaceEnabled()))
}

// hop is a running "ferry sink".
type hop struct {
	*testrelay.Proc
	dir string // capture directory
}

// startSink runs "ferry sink" on addr ("127.0.0.1:0" for any port) with
// extra flags, capturing into a fresh directory.
func startSink(t *testing.T, addr string, flags ...string) *hop {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"sink", "--listen", addr, "--out", dir}, flags...)
	return &hop{Proc: ferry().Start(t, "sink", args...), dir: dir}
}

// capture is one message the sink saved.
type capture struct {
	sc   sink.Sidecar
	data []byte
}

// captures reads every complete capture (one with a sidecar), ordered by
// arrival.
func (h *hop) captures(t *testing.T) []capture {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(h.dir, "*.json"))
	if err != nil {
		t.Fatalf("listing captures: %v", err)
	}
	var out []capture
	for _, n := range names {
		id := strings.TrimSuffix(filepath.Base(n), ".json")
		sc, data, err := sink.ReadCapture(h.dir, id)
		if err != nil {
			t.Fatalf("reading capture %s: %v", id, err)
		}
		out = append(out, capture{sc: sc, data: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sc.Received.Before(out[j].sc.Received) })
	return out
}

// count returns the number of complete captures.
func (h *hop) count(t *testing.T) int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(h.dir, "*.json"))
	if err != nil {
		t.Fatalf("listing captures: %v", err)
	}
	return len(names)
}

// waitCaptures waits until the sink holds at least n captures and returns
// them all.
func (h *hop) waitCaptures(t *testing.T, n int) []capture {
	t.Helper()
	testrelay.WaitFor(t, fmt.Sprintf("%d message(s) at the sink", n), func() bool { return h.count(t) >= n })
	return h.captures(t)
}

// relayHostname is the --hostname every relay in these tests runs with.
const relayHostname = "relay.test"

// shortRetry is a configuration with retries every second or two.
const shortRetry = `
[queue]
retry_initial = "1s"
retry_max = "2s"
`

// relay is a running "ferry serve".
type relay struct {
	*testrelay.Proc
	spool string
}

// startRelay runs "ferry serve" on a free loopback port with the given
// configuration text (none when empty), spool directory (fresh when empty)
// and --route flags.
func startRelay(t *testing.T, configText, spool string, routes ...string) *relay {
	t.Helper()
	var flags []string
	for _, r := range routes {
		flags = append(flags, "--route", r)
	}
	return startRelayFlags(t, configText, spool, flags...)
}

// startRelayFlags is startRelay with any extra flags.
func startRelayFlags(t *testing.T, configText, spool string, flags ...string) *relay {
	t.Helper()
	if spool == "" {
		spool = filepath.Join(t.TempDir(), "spool")
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--spool", spool, "--hostname", relayHostname}
	if configText != "" {
		file := filepath.Join(t.TempDir(), "ferry.toml")
		if err := os.WriteFile(file, []byte(configText), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", file)
	}
	args = append(args, flags...)
	return &relay{Proc: ferry().Start(t, "serve", args...), spool: spool}
}

// routeAll is a --route value sending every domain to the hop at addr.
func routeAll(addr string) string { return routeTo("*", addr) }

// routeTo is a --route value sending domain to the hop at addr, with no MX
// lookup.
func routeTo(domain, addr string) string {
	return domain + "=" + literalHop(addr)
}

// literalHop is the next hop "[ip]:port" (no MX lookup) for addr.
func literalHop(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "[" + host + "]:" + port
}

// freePort returns a loopback address nobody listens on (at the moment).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// testMessages lists the .eml files under testdata.
func testMessages(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no testdata/*.eml (%v)", err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}
