package testrelay

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// WaitLimit bounds every wait of these helpers: for a process to listen
// or exit, for a log line, for a condition. It is generous: CI runs on a
// busy 2-core machine, and only a failing test ever waits this long.
const WaitLimit = 90 * time.Second

// stopGrace is how long a graceful stop may take before SIGKILL.
const stopGrace = 30 * time.Second

// dumpTail is how much of a process's stderr a failed test logs.
const dumpTail = 64 << 10

// RaceEnabled reports whether the running test binary was built with
// -race (read from its build information), so that Main can build ferry
// the same way.
func RaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// Binary is a ferry binary built for the tests.
type Binary struct {
	// Path is the executable.
	Path string
	// GracefulStop makes the cleanup of every started process send
	// SIGTERM and fail the test unless the process exits within 10s (it
	// is then killed); without it, the cleanup sends SIGKILL.
	GracefulStop bool
	// Env holds extra "KEY=value" entries for the processes' environment;
	// they replace inherited ones of the same key.
	Env []string
}

// NewBinary returns where Main builds ferry for the test package pkg:
// a directory of its own per test process, so concurrent runs do not
// share it.
func NewBinary(pkg string) Binary {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("ferry-%s-%d", pkg, os.Getpid()))
	return Binary{Path: filepath.Join(dir, "ferry")}
}

// Main is the body of a TestMain: it builds ferry at b.Path (with -race
// when race is set, so that a data race inside a ferry process fails the
// test that triggered it; pass RaceEnabled()), runs the tests, removes
// the binary's directory, and returns the exit code for os.Exit.
func (b Binary) Main(m *testing.M, race bool) int {
	dir := filepath.Dir(b.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "testrelay:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := b.build(race); err != nil {
		fmt.Fprintln(os.Stderr, "testrelay:", err)
		return 1
	}
	return m.Run()
}

// build builds ./cmd/ferry of the module around the working directory
// into b.Path.
func (b Binary) build(race bool) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", b.Path}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/ferry")...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/ferry: %w\n%s", err, out)
	}
	return nil
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

// env is the environment of the ferry processes: the tests' own, with the
// race detector's pause at exit cut from its default of one second (a
// race report is still written before the process ends), FERRY_CONFIG
// set to an empty file so that no /etc/ferry/ferry.toml of the machine
// applies, and then b.Env.
func (b Binary) env() []string {
	gorace := "atexit_sleep_ms=50"
	if old := os.Getenv("GORACE"); old != "" {
		gorace = old + " " + gorace
	}
	out := append(os.Environ(), "GORACE="+gorace, "FERRY_CONFIG="+os.DevNull)
	return append(out, b.Env...)
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: one goroutine
// writes, another reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// listenWatch collects a process's stdout and hands over the address of
// its first "listening on ADDR" line.
type listenWatch struct {
	SyncBuffer
	mu    sync.Mutex
	line  []byte
	addrc chan string
}

func (w *listenWatch) Write(p []byte) (int, error) {
	_, _ = w.SyncBuffer.Write(p)
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

// Proc is a running ferry subcommand.
type Proc struct {
	// Name names the process in failure messages ("serve", "sink" …).
	Name string
	// Cmd is the command; Cmd.Process is the running process.
	Cmd *exec.Cmd
	// Stdout and Stderr collect the process's output; Stderr is the log.
	Stdout, Stderr *SyncBuffer
	// Addr is the address of the first "listening on ADDR" line.
	Addr     string
	done     chan struct{}
	graceful bool
}

// Start runs "ferry ARGS...", waits (at most WaitLimit) for its "listening
// on ADDR" line on stdout, and checks that ADDR is a loopback address. When
// the test ends the process is stopped (see Binary.GracefulStop), a race
// report in its stderr fails the test, and a failed test logs its stderr.
func (b Binary) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	p, err := b.start(t, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartOnFreePort is Start for a process told its listening address:
// args(addr) gives the arguments for the address addr, a FreePort. Ports
// below the kernel's ephemeral range are never handed out for port 0, so
// nothing that once sent to a port-0 listener (another test's relay still
// retrying a closed sink's port, say) can reach this process. When the
// port is taken meanwhile it tries another.
func (b Binary) StartOnFreePort(t testing.TB, name string, args func(addr string) []string) *Proc {
	t.Helper()
	var last error
	for range 10 {
		p, err := b.start(t, name, args(FreePort(t))...)
		if err == nil {
			return p
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		last = err
	}
	t.Fatalf("no free port after 10 tries: %v", last)
	return nil
}

// start is Start returning the failure to listen instead of ending the
// test.
func (b Binary) start(t testing.TB, name string, args ...string) (*Proc, error) {
	t.Helper()
	watch := &listenWatch{addrc: make(chan string, 1)}
	p := &Proc{
		Name:     name,
		Cmd:      exec.Command(b.Path, args...),
		Stdout:   &watch.SyncBuffer,
		Stderr:   &SyncBuffer{},
		done:     make(chan struct{}),
		graceful: b.GracefulStop,
	}
	p.Cmd.Env = b.env()
	p.Cmd.Stdout = watch
	p.Cmd.Stderr = p.Stderr
	if err := p.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %v: %w", name, args, err)
	}
	go func() {
		_ = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.graceful {
			p.Stop(t)
		} else {
			p.Kill(t, syscall.SIGKILL)
		}
		if strings.Contains(p.Stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector reported a data race", p.Name)
		}
		if t.Failed() {
			p.Dump(t)
		}
	})
	select {
	case p.Addr = <-watch.addrc:
		host, _, err := net.SplitHostPort(p.Addr)
		if err != nil || !net.ParseIP(host).IsLoopback() {
			return nil, fmt.Errorf("%s listens on %q, not a loopback address", name, p.Addr)
		}
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening (%v)\nstderr:\n%s", name, p.Cmd.ProcessState, p.Stderr.String())
	case <-time.After(WaitLimit):
		return nil, fmt.Errorf("%s: no \"listening on\" line within %v", name, WaitLimit)
	}
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill sends sig (unless the process has exited) and waits at most
// WaitLimit for it to exit.
func (p *Proc) Kill(t testing.TB, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Logf("%s: signal %v: %v", p.Name, sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(WaitLimit):
		t.Errorf("%s: still running %v after %v", p.Name, sig, WaitLimit)
	}
}

// Stop ends the process with SIGTERM (a graceful shutdown); if it still
// runs 10s later the test fails and the process gets SIGKILL.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopGrace):
	}
	t.Errorf("%s: still running %v after SIGTERM; killing it", p.Name, stopGrace)
	p.Kill(t, syscall.SIGKILL)
}

// Dump logs the process's stderr (its last 64 KiB).
func (p *Proc) Dump(t testing.TB) {
	t.Helper()
	s := p.Stderr.String()
	if len(s) > dumpTail {
		s = "[…]" + s[len(s)-dumpTail:]
	}
	t.Logf("---- %s %s stderr ----\n%s---- end %s ----", p.Name, strings.Join(p.Cmd.Args[1:], " "), s, p.Name)
}

// LogLines returns the non-empty stderr lines that contain every one of
// words.
func (p *Proc) LogLines(words ...string) []string {
	var out []string
	for _, l := range strings.Split(p.Stderr.String(), "\n") {
		if l != "" && containsAll(l, words) {
			out = append(out, l)
		}
	}
	return out
}

// WaitLog waits (at most WaitLimit) until a stderr line contains every one
// of words, and returns the first such line.
func (p *Proc) WaitLog(t testing.TB, words ...string) string {
	t.Helper()
	var line string
	WaitFor(t, fmt.Sprintf("%s log line with %q", p.Name, words), func() bool {
		if ls := p.LogLines(words...); len(ls) > 0 {
			line = ls[0]
			return true
		}
		return false
	})
	return line
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// WaitFor polls cond every 10ms until it holds, failing the test after
// WaitLimit; what names the awaited condition in the failure.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitWithin(t, WaitLimit, what, cond)
}

// WaitWithin is WaitFor with its own limit, for conditions that take long
// by design (a lease expiring, a database coming back).
func WaitWithin(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run runs a short-lived ferry subcommand (such as probe), failing the
// test if it runs longer than WaitLimit or cannot start, and returns its
// stdout, stderr and exit code.
func (b Binary) Run(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return b.RunWith(t, "", nil, args...)
}

// RunInput is Run with input on the command's standard input.
func (b Binary) RunInput(t testing.TB, input string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return b.RunWith(t, "", []byte(input), args...)
}

// RunWith is Run with stdin as the process's standard input and, when
// program is not "", the executable program (a link to b.Path, say, for
// a binary that acts on the name it is called by) instead of b.Path.
func (b Binary) RunWith(t testing.TB, program string, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if program == "" {
		program = b.Path
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Env = b.env()
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v", program, strings.Join(args, " "), WaitLimit)
	}
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%s %s: %v", program, strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}
