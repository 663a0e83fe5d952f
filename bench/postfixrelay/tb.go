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

func (t *programTB) ArtifactDir() string          { return os.TempDir() }
func (t *programTB) Attr(key, value string)       { t.Logf("attr %s=%s", key, value) }
func (t *programTB) Cleanup(f func())             { t.mu.Lock(); t.cleanups = append(t.cleanups, f); t.mu.Unlock() }
func (t *programTB) Error(args ...any)            { t.Log(args...); t.Fail() }
func (t *programTB) Errorf(f string, args ...any) { t.Logf(f, args...); t.Fail() }
func (t *programTB) Fail()                        { t.mu.Lock(); t.failed = true; t.mu.Unlock() }
func (t *programTB) FailNow()                     { t.Fail(); t.exit(exitFatal) }
func (t *programTB) Failed() bool                 { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }
func (t *programTB) Fatal(args ...any)            { t.Log(args...); t.FailNow() }
func (t *programTB) Fatalf(f string, args ...any) { t.Logf(f, args...); t.FailNow() }
func (t *programTB) Helper()                      {}
func (t *programTB) Log(args ...any)              { fmt.Fprintln(t.log, args...) }
func (t *programTB) Logf(f string, args ...any)   { fmt.Fprintf(t.log, f+"\n", args...) }
func (t *programTB) Name() string                 { return "postfixrelay" }
func (t *programTB) Setenv(key, value string)     { _ = os.Setenv(key, value) }
func (t *programTB) Chdir(dir string)             { _ = os.Chdir(dir) }
func (t *programTB) Skip(args ...any)             { t.Log(args...); t.exit(exitSkip) }
func (t *programTB) SkipNow()                     { t.exit(exitSkip) }
func (t *programTB) Skipf(f string, args ...any)  { t.Logf(f, args...); t.exit(exitSkip) }
func (t *programTB) Skipped() bool                { return false }
func (t *programTB) TempDir() string {
	d, err := os.MkdirTemp("", "postfixrelay-")
	if err != nil {
		t.Fatalf("postfixrelay: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}
func (t *programTB) Context() context.Context { return t.ctx }
func (t *programTB) Output() io.Writer        { return t.log }
