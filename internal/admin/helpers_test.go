package admin

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

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

// openQueue opens a queue in a temporary spool; events go to onEvent.
func openQueue(t *testing.T, logger *slog.Logger, onEvent func(queue.Event)) (*queue.Queue, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := queue.DefaultConfig(dir)
	cfg.Logger = logger
	cfg.SegmentSize = 256 << 10
	cfg.RetryInitial = time.Hour
	cfg.OnEvent = onEvent
	q, err := queue.Open(cfg)
	if err != nil {
		t.Fatalf("queue.Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q, dir
}

func parseAddr(s string) smtp.Path {
	if s == "" || s == "<>" {
		return smtp.Path{}
	}
	l, d, _ := strings.Cut(s, "@")
	return smtp.Path{LocalPart: l, Domain: d}
}

// put queues a message from sender to rcpts with body.
func put(t *testing.T, q *queue.Queue, body, sender string, rcpts ...string) string {
	t.Helper()
	env := &smtp.Envelope{From: parseAddr(sender), Body: smtp.Body8BitMIME,
		Client: smtp.ClientInfo{Addr: "192.0.2.7:4711", Helo: "client.example", Protocol: "ESMTP"}}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, smtp.Recipient{Addr: parseAddr(r), Notify: smtp.NotifyFailure | smtp.NotifyDelay})
	}
	id, err := q.Put(context.Background(), env, strings.NewReader(body))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return id
}

// startAdmin serves the admin API on loopback and returns a client for it.
func startAdmin(t *testing.T, opts Options) (*Client, string) {
	t.Helper()
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	return NewClient(addr), addr
}

// deferLeased plays one delivery attempt: it leases what is due and
// defers every leased recipient with reply from mx[192.0.2.1]:25.
func deferLeased(t *testing.T, q *queue.Queue, reply smtp.Reply) {
	t.Helper()
	ctx := testCtx(t)
	l, err := q.Lease(ctx)
	if err != nil || l == nil {
		t.Fatalf("Lease: %v %v", l, err)
	}
	for _, it := range l.Items {
		for _, r := range it.Rcpts {
			st := queue.Result{State: queue.Deferred, Reply: reply, RemoteMTA: "mx[192.0.2.1]:25", At: time.Now()}
			if err := q.Update(ctx, nil, it.Env.ID, r, st); err != nil {
				t.Fatal(err)
			}
		}
	}
	q.Release(l)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const plainBody = "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n\r\nhello\r\n"

const eightBitBody = "From: a@x.test\r\nTo: b@y.test\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
	"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln: the weather is fine and everyone here is well.\r\n" +
	"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain\r\n" +
	"--b1--\r\n"
