package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childConfigEnv names the configuration file the helper process serves.
const childConfigEnv = "FERRY_TEST_SERVE_CONFIG"

// TestServeChildProcess is not a test of its own: it is "ferry serve" in
// the child process that TestServeSIGHUPProcess starts, so that signals go
// to that process and not to the test binary running other tests.
func TestServeChildProcess(t *testing.T) {
	file := os.Getenv(childConfigEnv)
	if file == "" {
		t.Skip("runs only as the child process of TestServeSIGHUPProcess")
	}
	os.Exit(runServe([]string{"--config", file}, os.Stdout, os.Stderr))
}

// TestServeSIGHUPProcess sends real SIGHUP and SIGTERM to a separate
// "ferry serve" process: the reload changes the route of the next message,
// and SIGTERM stops the process with status 0.
func TestServeSIGHUPProcess(t *testing.T) {
	dir := t.TempDir()
	spool, file := filepath.Join(dir, "spool"), filepath.Join(dir, "ferry.toml")
	hopA, hopB := startSinkHop(t), startSinkHop(t)
	writeFile(t, file, reloadConfig(spool, hopA.Addr(), ""))
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childConfigEnv+"="+file)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	out := waitFor(t, &stdout, "ferry serve: listening on ")
	rs := &runningServe{}
	for _, line := range strings.Split(out, "\n") {
		if a, ok := strings.CutPrefix(line, "ferry serve: listening on "); ok {
			rs.addr = strings.TrimSpace(a)
		}
	}
	if r := rs.send(t, "x@company.example", "before"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("message: %q", r)
	}
	waitMessages(t, hopA, 1)

	writeFile(t, file, reloadConfig(spool, hopB.Addr(), ""))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &stderr, "configuration reloaded")
	if r := rs.send(t, "x@company.example", "after"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("message after SIGHUP: %q", r)
	}
	waitMessages(t, hopB, 1)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("ferry serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(waitLimit):
		t.Fatalf("ferry serve still running 20s after SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown logged:\n%s", stderr.String())
	}
}
