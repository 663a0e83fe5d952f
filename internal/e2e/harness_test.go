package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/sink"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 20 * time.Second

// binDir is the directory of the binary TestMain builds: one per test
// process, so concurrent runs do not share it.
func binDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("ferry-e2e-%d", os.Getpid()))
}

// ferryBin is the path of the binary TestMain builds.
func ferryBin() string { return filepath.Join(binDir(), "ferry") }

// TestMain builds the ferry binary once (with -race when the tests run with
// it, so a data race inside "ferry serve" fails the test that triggered it).
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := os.MkdirAll(binDir(), 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(binDir())
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	args := []string{"build", "-o", ferryBin()}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/ferry")...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/ferry: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot finds the directory of go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stdoutWatch collects a process's stdout and reports the address of its
// first "listening on ADDR" line.
type stdoutWatch struct {
	syncBuffer
	mu    sync.Mutex
	line  []byte
	addrc chan string
}

func (w *stdoutWatch) Write(p []byte) (int, error) {
	w.syncBuffer.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		l := string(w.line[:i])
		w.line = w.line[i+1:]
		if _, addr, ok := strings.Cut(l, "listening on "); ok {
			select {
			case w.addrc <- strings.TrimSpace(addr):
			default:
			}
		}
	}
	return len(p), nil
}

// proc is a running ferry subcommand.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *stdoutWatch
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	addr   string        // from the first "listening on" line
}

// startProc runs "ferry ARGS...", waits for its "listening on" line, and
// kills it when the test ends, dumping its stderr if the test failed.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{
		name:   name,
		cmd:    exec.Command(ferryBin(), args...),
		stdout: &stdoutWatch{addrc: make(chan string, 1)},
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: start %v: %v", name, args, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(t, syscall.SIGKILL)
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector reported a data race", p.name)
		}
		if t.Failed() {
			p.dump(t)
		}
	})
	select {
	case p.addr = <-p.stdout.addrc:
		host, _, err := net.SplitHostPort(p.addr)
		if err != nil || !net.ParseIP(host).IsLoopback() {
			t.Fatalf("%s listens on %q, not a loopback address", name, p.addr)
		}
	case <-p.done:
		t.Fatalf("%s exited before listening (%v)\nstderr:\n%s", name, p.cmd.ProcessState, p.stderr.String())
	case <-time.After(waitLimit):
		t.Fatalf("%s: no \"listening on\" line within %v", name, waitLimit)
	}
	return p
}

// kill sends sig (once the process runs) and waits for it to exit.
func (p *proc) kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Logf("%s: signal %v: %v", p.name, sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(waitLimit):
		t.Errorf("%s: still running %v after %v", p.name, sig, waitLimit)
	}
}

// dump logs the process's stderr, the last 24 KiB of it.
func (p *proc) dump(t *testing.T) {
	t.Helper()
	s := p.stderr.String()
	const max = 24 << 10
	if len(s) > max {
		s = "[…]" + s[len(s)-max:]
	}
	t.Logf("---- %s %s stderr ----\n%s---- end %s ----", p.name, strings.Join(p.cmd.Args[1:], " "), s, p.name)
}

// logLines returns the stderr lines that contain every one of words.
func (p *proc) logLines(words ...string) []string {
	var out []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		ok := true
		for _, w := range words {
			if !strings.Contains(l, w) {
				ok = false
				break
			}
		}
		if ok && l != "" {
			out = append(out, l)
		}
	}
	return out
}

// waitLog waits until a stderr line contains every one of words.
func (p *proc) waitLog(t *testing.T, words ...string) string {
	t.Helper()
	var line string
	waitFor(t, fmt.Sprintf("%s log line with %q", p.name, words), func() bool {
		if ls := p.logLines(words...); len(ls) > 0 {
			line = ls[0]
			return true
		}
		return false
	})
	return line
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hop is a running "ferry sink".
type hop struct {
	*proc
	dir string // capture directory
}

// startSink runs "ferry sink" on addr ("127.0.0.1:0" for any port) with
// extra flags, capturing into a fresh directory.
func startSink(t *testing.T, addr string, flags ...string) *hop {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"sink", "--listen", addr, "--out", dir}, flags...)
	return &hop{proc: startProc(t, "sink", args...), dir: dir}
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
	waitFor(t, fmt.Sprintf("%d message(s) at the sink", n), func() bool { return h.count(t) >= n })
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
	*proc
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
	args := []string{"serve", "--listen", "127.0.0.1:0", "--spool", spool, "--hostname", relayHostname, "--admin", "127.0.0.1:0"}
	if configText != "" {
		file := filepath.Join(t.TempDir(), "ferry.toml")
		if err := os.WriteFile(file, []byte(configText), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", file)
	}
	args = append(args, flags...)
	return &relay{proc: startProc(t, "serve", args...), spool: spool}
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

// readTestdata reads testdata/name.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
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
