package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// fakeClock is a settable clock for scheduler tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuffer is a concurrency-safe log sink tests can search.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testConfig returns a configuration for a test spool with small segments.
func testConfig(dir string, clock *fakeClock, logw io.Writer) Config {
	cfg := DefaultConfig(dir)
	if logw == nil {
		logw = io.Discard
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if clock != nil {
		cfg.Clock = clock.Now
	}
	cfg.SegmentSize = 256 << 10
	cfg.GCInterval = time.Hour // tests call gcStep themselves
	return cfg
}

func mustOpen(t testing.TB, cfg Config) *Queue {
	t.Helper()
	q, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return q
}

// testEnv returns an envelope from sender to the given recipients
// ("user@domain").
func testEnv(sender string, rcpts ...string) *smtp.Envelope {
	env := &smtp.Envelope{From: parseAddr(sender), Body: smtp.Body8BitMIME,
		Client: smtp.ClientInfo{Addr: "192.0.2.7:4711", Helo: "client.example", Protocol: "ESMTP"}}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, smtp.Recipient{Addr: parseAddr(r), Notify: smtp.NotifyFailure | smtp.NotifyDelay})
	}
	return env
}

func parseAddr(s string) smtp.Path {
	if s == "" || s == "<>" {
		return smtp.Path{}
	}
	l, d, _ := strings.Cut(s, "@")
	return smtp.Path{LocalPart: l, Domain: d}
}

// bodyFor derives a message body from a sequence number, so a reader can
// check it without a copy.
func bodyFor(seq, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Subject: message %d\r\n\r\n", seq)
	line := fmt.Sprintf("line of message %d: 0123456789 abcdefghijklmnopqrstuvwxyz\r\n", seq)
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()[:max(size, 1)]
}

func putBody(t testing.TB, q *Queue, env *smtp.Envelope, body []byte) string {
	t.Helper()
	id, err := q.Put(context.Background(), env, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return id
}

func readBodyOf(t testing.TB, q *Queue, id string) []byte {
	t.Helper()
	info, err := q.Show(id)
	if err != nil {
		t.Fatalf("Show(%s): %v", id, err)
	}
	rc, err := info.Body()
	if err != nil {
		t.Fatalf("open body of %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read body of %s: %v", id, err)
	}
	return b
}

// leaseCtx calls Lease with a short deadline.
func leaseCtx(q *Queue, d time.Duration) (*Lease, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return q.Lease(ctx)
}

// waitCond polls cond until it holds, failing the test after a minute (a
// bound only a failing test reaches, even on a busy machine); what names
// the awaited condition.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not a wait for an outcome
	}
}
