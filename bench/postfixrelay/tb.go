package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// programTB lets a program use internal/postfixtest, whose Start takes a
// testing.TB, without copying its set-up code: it implements every
// exported method of testing.TB (Go 1.26) for a command-line program.
// Fatal ends the program after running the cleanups; Skip ends it with
// status 3. The embedded interface only supplies testing.TB's unexported
// method, which no package outside testing can call.
type programTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	log      io.Writer
	ctx      context.Context
	cancel   context.CancelFunc
}

// Exit statuses of the program.
const (
	exitFatal = 1
	exitSkip  = 3
)

func newProgramTB(log io.Writer) *programTB {
	ctx, cancel := context.WithCancel(context.Background())
	return &programTB{log: log, ctx: ctx, cancel: cancel}
}

// runCleanups runs the registered cleanups, last first, once.
func (t *programTB) runCleanups() {
	t.mu.Lock()
	cs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	t.cancel()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

func (t *programTB) exit(code int) {
	t.runCleanups()
	os.Exit(code)
}

// ArtifactDir returns the system temporary directory.
func (t *programTB) ArtifactDir() string { return os.TempDir() }

// Attr logs the attribute.
func (t *programTB) Attr(key, value string) { t.Logf("attr %s=%s", key, value) }

// Cleanup registers f to run when the program stops the instance.
func (t *programTB) Cleanup(f func()) { t.mu.Lock(); t.cleanups = append(t.cleanups, f); t.mu.Unlock() }

// Error logs args and marks the run failed.
func (t *programTB) Error(args ...any) { t.Log(args...); t.Fail() }

// Errorf logs the formatted message and marks the run failed.
func (t *programTB) Errorf(f string, args ...any) { t.Logf(f, args...); t.Fail() }

// Fail marks the run failed.
func (t *programTB) Fail() { t.mu.Lock(); t.failed = true; t.mu.Unlock() }

// FailNow marks the run failed, runs the cleanups and exits.
func (t *programTB) FailNow() { t.Fail(); t.exit(exitFatal) }

// Failed reports whether the run failed.
func (t *programTB) Failed() bool { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }

// Fatal logs args, runs the cleanups and exits with status 1.
func (t *programTB) Fatal(args ...any) { t.Log(args...); t.FailNow() }

// Fatalf logs the formatted message, runs the cleanups and exits with status 1.
func (t *programTB) Fatalf(f string, args ...any) { t.Logf(f, args...); t.FailNow() }

// Helper does nothing: a program has no test line numbers to adjust.
func (t *programTB) Helper() {}

// Log writes args to the log.
func (t *programTB) Log(args ...any) { fmt.Fprintln(t.log, args...) }

// Logf writes the formatted message to the log.
func (t *programTB) Logf(f string, args ...any) { fmt.Fprintf(t.log, f+"\n", args...) }

// Name returns the program's name.
func (t *programTB) Name() string { return "postfixrelay" }

// Setenv sets an environment variable for the rest of the program.
func (t *programTB) Setenv(key, value string) { _ = os.Setenv(key, value) }

// Chdir changes the working directory for the rest of the program.
func (t *programTB) Chdir(dir string) { _ = os.Chdir(dir) }

// Skip logs args, runs the cleanups and exits with status 3.
func (t *programTB) Skip(args ...any) { t.Log(args...); t.exit(exitSkip) }

// SkipNow runs the cleanups and exits with status 3.
func (t *programTB) SkipNow() { t.exit(exitSkip) }

// Skipf logs the formatted message, runs the cleanups and exits with status 3.
func (t *programTB) Skipf(f string, args ...any) { t.Logf(f, args...); t.exit(exitSkip) }

// Skipped reports false: a skip ends the program.
func (t *programTB) Skipped() bool { return false }

// TempDir creates a temporary directory removed at the end.
func (t *programTB) TempDir() string {
	d, err := os.MkdirTemp("", "postfixrelay-")
	if err != nil {
		t.Fatalf("postfixrelay: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// Context returns a context canceled when the cleanups start.
func (t *programTB) Context() context.Context { return t.ctx }

// Output returns the log writer.
func (t *programTB) Output() io.Writer { return t.log }
