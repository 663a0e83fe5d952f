package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/sink"
)

// reloadNow asks a running serve to reload, as SIGHUP does, and returns
// the outcome.
func reloadNow(t *testing.T, reloads chan chan error) error {
	t.Helper()
	done := make(chan error, 1)
	select {
	case reloads <- done:
	case <-time.After(10 * time.Second):
		t.Fatal("serve took no reload request within 10s")
	}
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("reload did not finish within 10s")
	}
	return nil
}

// runningServe is an in-process "ferry serve" started on a config file.
type runningServe struct {
	addr, admin string
	logs        *syncBuffer
	level       *slog.LevelVar
	reloads     chan chan error
}

// startServe runs serve on configFile until the test ends.
func startServe(t *testing.T, configFile string) *runningServe {
	t.Helper()
	f := serveFlags{configFile: configFile}
	cfg, err := loadServeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	rs := &runningServe{logs: &syncBuffer{}, level: new(slog.LevelVar), reloads: make(chan chan error)}
	var stdout syncBuffer
	logger := slog.New(slog.NewTextHandler(rs.logs, &slog.HandlerOptions{Level: rs.level}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, relayEnv{flags: f, logger: logger, level: rs.level, stdout: &stdout, reloads: rs.reloads})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s")
		}
	})
	out := waitFor(t, &stdout, "ferry serve: listening on ")
	for _, line := range strings.Split(out, "\n") {
		if a, ok := strings.CutPrefix(line, "ferry serve: listening on "); ok {
			rs.addr = a
		}
		if a, ok := strings.CutPrefix(line, "ferry serve: admin API on "); ok {
			rs.admin = a
		}
	}
	return rs
}

// send submits one message and returns the reply to RCPT (when not 250)
// or to the end of data.
func (rs *runningServe) send(t *testing.T, to, subject string) string {
	t.Helper()
	c := dialSMTP(t, rs.addr)
	defer c.cmd("QUIT")
	c.cmd("EHLO client.test")
	if r := c.cmd("MAIL FROM:<app@company.example>"); !strings.HasPrefix(r, "250 ") {
		return r
	}
	if r := c.cmd("RCPT TO:<" + to + ">"); !strings.HasPrefix(r, "250 ") {
		c.cmd("RSET")
		return r
	}
	c.cmd("DATA")
	return c.cmd("Subject: " + subject + "\r\n\r\nHello.\r\n.")
}

func startSinkHop(t *testing.T) *sink.Sink {
	t.Helper()
	s, err := sink.Start(sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitMessages waits until s has n messages.
func waitMessages(t *testing.T, s *sink.Sink, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Wait(ctx, n); err != nil {
		t.Fatalf("sink %s: %v (has %d messages, want %d)", s.Addr(), err, len(s.Messages()), n)
	}
}

// reloadConfig is a serve configuration routing company.example to hop,
// with extra appended.
func reloadConfig(spool, hop, extra string) string {
	return fmt.Sprintf(`hostname = "relay.test"

[[listener]]
address = "127.0.0.1:0"

[queue]
spool = %q

[delivery]
idle_timeout = "0s"

[[route]]
domain = "company.example"
nexthop = "[127.0.0.1]:%s"
%s`, spool, hop[strings.LastIndexByte(hop, ':')+1:], extra)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeReload reloads a running serve: a good file changes routing for
// the next delivery, the relay rules for the next RCPT and the log level;
// a bad file is refused with its errors logged by line, and the
// configuration in force stays; restart-only changes are named.
func TestServeReload(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	file := filepath.Join(dir, "ferry.toml")
	hopA, hopB := startSinkHop(t), startSinkHop(t)
	writeFile(t, file, reloadConfig(spool, hopA.Addr(), ""))
	rs := startServe(t, file)

	if r := rs.send(t, "x@company.example", "one"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("first message: %q", r)
	}
	waitMessages(t, hopA, 1)

	// A good file: company.example now goes to hop B, only 192.0.2.0/24
	// relays (loopback may still send to the accepted domain), and the
	// log level is warn.
	writeFile(t, file, reloadConfig(spool, hopB.Addr(), `
[relay]
networks = ["192.0.2.0/24"]
accept_domains = ["company.example"]

[log]
level = "warn"
`))
	if err := reloadNow(t, rs.reloads); err != nil {
		t.Fatalf("reload of a good file: %v\n%s", err, rs.logs)
	}
	if !strings.Contains(rs.logs.String(), "configuration reloaded") || rs.level.Level() != slog.LevelWarn {
		t.Errorf("level %v after reload; log:\n%s", rs.level.Level(), rs.logs)
	}
	if r := rs.send(t, "x@company.example", "two"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("second message: %q", r)
	}
	waitMessages(t, hopB, 1)
	if r := rs.send(t, "x@elsewhere.example", "three"); !strings.HasPrefix(r, "554 5.7.1") {
		t.Errorf("relaying from loopback after the reload removed it: %q, want 554 5.7.1", r)
	}

	// A bad file: two errors, both logged with their lines; nothing changes.
	bad := reloadConfig(spool, hopA.Addr(), "\n[limits]\nmax_errors = 0\n\n[relay]\nnetworks = [\"10.1.2.3/8\"]\n")
	writeFile(t, file, bad)
	lines := strings.Split(bad, "\n")
	lineOf := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i + 1
			}
		}
		t.Fatalf("no %q in the file", prefix)
		return 0
	}
	if err := reloadNow(t, rs.reloads); err == nil {
		t.Fatal("reload of a bad file succeeded")
	}
	logs := rs.logs.String()
	for _, want := range []string{
		fmt.Sprintf("%s:%d: limits.max_errors: want a whole number of at least 1, got 0", file, lineOf("max_errors")),
		fmt.Sprintf("%s:%d: relay.networks: ", file, lineOf("networks")),
		"reload refused; keeping the configuration in force",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	rs.level.Set(slog.LevelInfo) // the bad file did not change it; see the rest
	if r := rs.send(t, "x@company.example", "four"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("message after the refused reload: %q", r)
	}
	waitMessages(t, hopB, 2)
	if n := len(hopA.Messages()); n != 1 {
		t.Errorf("hop A got %d messages, want 1: the refused file's route took effect", n)
	}

	// Restart-only settings are named, the rest still applies.
	writeFile(t, file, strings.Replace(reloadConfig(spool, hopA.Addr(), "\n[limits]\nmax_errors = 5\n"), `"relay.test"`, `"other.test"`, 1))
	if err := reloadNow(t, rs.reloads); err != nil {
		t.Fatal(err)
	}
	logs = rs.logs.String()
	for _, want := range []string{`"needs a restart: hostname changed"`, `"needs a restart: [limits] changed"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if r := rs.send(t, "x@company.example", "five"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("message after the third reload: %q", r)
	}
	waitMessages(t, hopA, 2)
}
