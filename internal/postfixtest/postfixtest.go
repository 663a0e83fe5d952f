// Package postfixtest runs a private Postfix instance on a loopback port for
// interoperability tests: Debian's Postfix, with its own configuration,
// queue and data directories, never the system instance on port 25.
//
// An instance works in one of two modes:
//   - ModeCapture: Postfix is the final destination. Every message it accepts
//     is delivered by Postfix's pipe(8) into a capture directory, with its
//     envelope, and Messages / WaitMessages return it.
//   - ModeRelay: Postfix accepts mail from loopback and relays everything to
//     Options.RelayHost with its own SMTP client.
//
// Start skips the test (visibly, with t.Skip) when Postfix is not installed
// or the test does not run as root. The instance is stopped and its
// directories removed by t.Cleanup, even when the test fails; on failure
// Postfix's log is written to the test log.
package postfixtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// Postfix's programs on Debian.
const (
	postfixCmd = "/usr/sbin/postfix"
	postconf   = "/usr/sbin/postconf"
)

// Mode is what an instance does with the mail it accepts.
type Mode string

// Modes of an instance.
const (
	// ModeCapture delivers every accepted message into a capture directory.
	ModeCapture Mode = "capture"
	// ModeRelay relays every accepted message to Options.RelayHost.
	ModeRelay Mode = "relay"
)

// Options configure an instance.
type Options struct {
	// Mode is ModeCapture (the default when empty) or ModeRelay.
	Mode Mode
	// Port is the loopback port smtpd listens on; 0 picks a free one.
	Port int
	// RelayHost is "127.0.0.1:PORT", the next hop in ModeRelay, used as
	// relayhost = [127.0.0.1]:PORT (no MX lookup). Required in ModeRelay.
	RelayHost string
	// Hostname is myhostname; default "postfix.test".
	Hostname string
	// DiscardEHLOKeywords are EHLO keywords smtpd does not offer
	// (smtpd_discard_ehlo_keywords), e.g. "8bitmime" to play a 7-bit hop.
	DiscardEHLOKeywords []string
	// ExtraMain are more main.cf parameters; they override the defaults.
	ExtraMain map[string]string
}

// Instance is a running private Postfix.
type Instance struct {
	t       testing.TB
	dir     string // instance root, 0755, outside any private temp dir
	confDir string
	addr    string
	mailDir string
	mode    Mode
	stopped bool
	// Started is how long Start took, to keep an eye on test time.
	Started time.Duration
}

// Start runs a private Postfix instance for the test and registers its stop
// with t.Cleanup. It skips the test when Postfix is missing or the test is
// not root, and fails it when the instance cannot start.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	if _, err := os.Stat(postfixCmd); err != nil {
		t.Skipf("postfix not installed (%s): interop test skipped; run .ci/run or apt-get install postfix", postfixCmd)
	}
	if os.Geteuid() != 0 {
		t.Skip("postfix interop test skipped: a private Postfix instance needs root")
	}
	if opts.Mode == "" {
		opts.Mode = ModeCapture
	}
	if opts.Mode != ModeCapture && opts.Mode != ModeRelay {
		t.Fatalf("postfixtest: unknown mode %q", opts.Mode)
	}
	if opts.Mode == ModeRelay && opts.RelayHost == "" {
		t.Fatal("postfixtest: ModeRelay needs Options.RelayHost")
	}
	begin := time.Now()
	port := opts.Port
	if port == 0 {
		// Below the ephemeral range: nothing listening on port 0 can take
		// it before Postfix binds it.
		_, p, _ := net.SplitHostPort(testrelay.FreePort(t))
		port, _ = strconv.Atoi(p)
	}
	// Not t.TempDir: Postfix's unprivileged processes must reach the queue,
	// and a test temp dir is mode 0700.
	dir, err := os.MkdirTemp("/var/tmp", "ferry-postfixtest-")
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	in := &Instance{
		t:       t,
		dir:     dir,
		confDir: filepath.Join(dir, "conf"),
		mailDir: filepath.Join(dir, "mail"),
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		mode:    opts.Mode,
	}
	t.Cleanup(in.Stop)
	if err := in.setUp(opts, port); err != nil {
		t.Fatalf("postfixtest: set up: %v", err)
	}
	if out, err := in.postfix("start"); err != nil {
		check, _ := in.postfix("check")
		t.Fatalf("postfixtest: %v\n%s\npostfix check:\n%s\n%s", err, out, check, in.Log())
	}
	if err := waitListening(in.addr, 90*time.Second); err != nil { // generous: a busy machine
		t.Fatalf("postfixtest: %v\n%s", err, in.Log())
	}
	in.Started = time.Since(begin)
	t.Logf("postfixtest: %s instance on %s started in %v (dir %s)", in.mode, in.addr, in.Started.Round(time.Millisecond), dir)
	return in
}

// Addr is the instance's SMTP address, "127.0.0.1:PORT".
func (in *Instance) Addr() string { return in.addr }

// Dir is the instance's root directory (conf/, queue/, data/, mail/,
// maillog).
func (in *Instance) Dir() string { return in.dir }

// Log returns Postfix's mail log so far.
func (in *Instance) Log() string {
	b, err := os.ReadFile(filepath.Join(in.dir, "maillog"))
	if err != nil {
		return fmt.Sprintf("(no Postfix log: %v)", err)
	}
	return string(b)
}

// WaitLog returns Postfix's mail log once ready reports true of it, or as
// it is after timeout. Postfix writes its log through postlogd, a process of
// its own, so a line can appear after what it reports (a capture, another
// instance's line) is seen: wait for it rather than read the log once.
func (in *Instance) WaitLog(timeout time.Duration, ready func(log string) bool) string {
	deadline := time.Now().Add(timeout)
	for {
		log := in.Log()
		if ready(log) || time.Now().After(deadline) {
			return log
		}
		time.Sleep(20 * time.Millisecond) // polls the log file, bounded by timeout
	}
}

// Stop stops Postfix and removes the instance's directories. It runs from
// t.Cleanup; calling it earlier is allowed and the second call does
// nothing. When the test failed, Postfix's log goes to the test log.
func (in *Instance) Stop() {
	if in.stopped {
		return
	}
	in.stopped = true
	if in.t.Failed() {
		in.t.Logf("postfixtest: Postfix log of %s:\n%s", in.addr, in.Log())
	}
	pid := in.masterPID()
	if pid > 0 {
		if out, err := in.postfix("abort"); err != nil {
			in.t.Logf("postfixtest: postfix abort: %v\n%s", err, out)
		}
		// The master ends its children on SIGTERM; wait for it, then kill
		// its process group if it lingers.
		deadline := time.Now().Add(5 * time.Second)
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if processAlive(pid) {
			in.t.Logf("postfixtest: master %d did not stop; killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		// The master leads its own process group (it calls setsid); its
		// children (smtpd holding the listener, pipe, qmgr) may outlive
		// it for a moment. End them too, then wait for the port to close.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for time.Now().Before(deadline.Add(5 * time.Second)) {
			c, err := net.DialTimeout("tcp", in.addr, time.Second)
			if err != nil {
				break
			}
			_ = c.Close()
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := os.RemoveAll(in.dir); err != nil {
		in.t.Errorf("postfixtest: remove %s: %v", in.dir, err)
	}
}

// masterPID reads the master's process ID, or 0.
func (in *Instance) masterPID() int {
	b, err := os.ReadFile(filepath.Join(in.dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is not alive; Postfix's master is not our child, but check
	// /proc to be sure it is not merely waiting to be reaped.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// postfix runs "postfix -c CONF CMD".
func (in *Instance) postfix(cmd string) ([]byte, error) {
	c := exec.Command(postfixCmd, "-c", in.confDir, cmd)
	c.Env = append(os.Environ(), "MAIL_CONFIG="+in.confDir)
	out, err := c.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("postfix %s: %w", cmd, err)
	}
	return out, nil
}

// waitListening waits until addr accepts connections and sends a 220
// greeting.
func waitListening(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			n, rerr := c.Read(buf)
			_, _ = c.Write([]byte("QUIT\r\n"))
			_ = c.Close()
			if rerr == nil && bytes.HasPrefix(buf[:n], []byte("220")) {
				return nil
			}
			last = fmt.Errorf("greeting %q, %v", buf[:n], rerr)
		} else {
			last = err
		}
		time.Sleep(25 * time.Millisecond)
	}
	return errors.Join(fmt.Errorf("postfix did not come up on %s within %v", addr, limit), last)
}
