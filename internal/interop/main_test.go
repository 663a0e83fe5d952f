package interop

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests (for a delivery, a process
// start or exit).
const waitLimit = 20 * time.Second

// ferryBin is the binary built by TestMain.
var ferryBin string

// TestMain builds the ferry binary once (with -race when the tests run with
// it, so a data race inside "ferry serve" fails the test that triggered
// it).
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "ferry-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	ferryBin = filepath.Join(tmp, "ferry")
	args := []string{"build", "-o", ferryBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/ferry")...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: go build ./cmd/ferry: %v\n%s", err, out)
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

// ferryEnv is the environment of the ferry processes: the tests' own,
// with the race detector's pause at exit cut from its default of one
// second (a race report is still written before the process ends).
func ferryEnv() []string {
	gorace := "atexit_sleep_ms=50"
	if old := os.Getenv("GORACE"); old != "" {
		gorace = old + " " + gorace
	}
	return append(os.Environ(), "GORACE="+gorace)
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

// listenWatch collects a process's stdout and hands over the address of
// its first "listening on ADDR" line.
type listenWatch struct {
	syncBuffer
	mu    sync.Mutex
	line  []byte
	addrc chan string
}

func (w *listenWatch) Write(p []byte) (int, error) {
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

// ferry is a running "ferry serve".
type ferry struct {
	cmd    *exec.Cmd
	stdout *listenWatch
	stderr *syncBuffer // the mail log
	done   chan struct{}
	addr   string // the SMTP listener, from the "listening on" line
}

// startFerry runs "ferry serve" on a free loopback port with a fresh spool
// and the given --route flags, waits until it listens, and stops it when
// the test ends (dumping its log if the test failed).
func startFerry(t *testing.T, routes ...string) *ferry {
	t.Helper()
	args := []string{"serve", "--listen", "127.0.0.1:0", "--spool", t.TempDir(), "--hostname", "ferry.test", "--admin", "127.0.0.1:0"}
	for _, r := range routes {
		args = append(args, "--route", r)
	}
	f := &ferry{
		cmd:    exec.Command(ferryBin, args...),
		stdout: &listenWatch{addrc: make(chan string, 1)},
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	f.cmd.Env = ferryEnv()
	f.cmd.Stdout = f.stdout
	f.cmd.Stderr = f.stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("ferry serve: start: %v", err)
	}
	go func() {
		_ = f.cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() {
		f.stop(t)
		if strings.Contains(f.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("ferry serve: the race detector reported a data race")
		}
		if t.Failed() {
			t.Logf("---- ferry %s log ----\n%s---- end ferry log ----", strings.Join(args, " "), f.stderr.String())
		}
	})
	select {
	case f.addr = <-f.stdout.addrc:
		host, _, err := net.SplitHostPort(f.addr)
		if err != nil || !net.ParseIP(host).IsLoopback() {
			t.Fatalf("ferry serve listens on %q, not a loopback address", f.addr)
		}
	case <-f.done:
		t.Fatalf("ferry serve exited before listening (%v)\nstderr:\n%s", f.cmd.ProcessState, f.stderr.String())
	case <-time.After(waitLimit):
		t.Fatalf("ferry serve: no \"listening on\" line within %v", waitLimit)
	}
	return f
}

// stop ends ferry serve with SIGTERM (a graceful shutdown), then SIGKILL
// if it lingers.
func (f *ferry) stop(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
		return
	default:
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
		return
	case <-time.After(10 * time.Second):
	}
	t.Errorf("ferry serve: still running 10s after SIGTERM; killing it")
	_ = f.cmd.Process.Kill()
	select {
	case <-f.done:
	case <-time.After(waitLimit):
		t.Errorf("ferry serve: still running after SIGKILL")
	}
}

// waitLog waits until the mail log holds a line containing every one of
// parts, and returns that line.
func (f *ferry) waitLog(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		for _, l := range strings.Split(f.stderr.String(), "\n") {
			if containsAll(l, parts) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry log: no line with %q within %v", parts, waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logLines returns the mail log lines containing every one of parts.
func (f *ferry) logLines(parts ...string) []string {
	var out []string
	for _, l := range strings.Split(f.stderr.String(), "\n") {
		if containsAll(l, parts) {
			out = append(out, l)
		}
	}
	return out
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// runFerry runs a short-lived ferry subcommand (such as probe) and
// returns its stdout, stderr and exit code.
func runFerry(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	cmd.Env = ferryEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ferry %s: still running after %v", strings.Join(args, " "), waitLimit)
	}
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("ferry %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}
