package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// storedMessage is one message a memStore accepted.
type storedMessage struct {
	env  smtp.Envelope
	tx   *Transaction
	body []byte
}

// memStore is a Store in memory with deterministic IDs (ID1, ID2, ...). put,
// when set, decides the result after the body has been read.
type memStore struct {
	mu   sync.Mutex
	seq  int
	msgs []storedMessage
	put  func(ctx context.Context, env *smtp.Envelope, body []byte) error
}

func (m *memStore) NewID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	return fmt.Sprintf("ID%d", m.seq)
}

func (m *memStore) Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("memstore: %w", err)
	}
	if m.put != nil {
		if err := m.put(ctx, env, b); err != nil {
			return "", err
		}
	}
	tx, _ := TransactionFromContext(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, storedMessage{env: *env, tx: tx, body: b})
	return env.ID, nil
}

func (m *memStore) messages() []storedMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]storedMessage(nil), m.msgs...)
}

// clientWait bounds each read and write of the test client and each
// server-side idle timeout tests do not set themselves: generous, as CI
// runs on a busy machine; only a failing test waits this long.
const clientWait = time.Minute

// testConfig is the configuration transcripts are written against.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Hostname = "mx.test"
	cfg.Timeouts = Timeouts{Command: clientWait, Data: clientWait, Write: clientWait}
	return cfg
}

// startServer runs a server on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, cfg Config, store Store, policy Policy) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, cfg, store, policy), l.Addr().String()
}

// serveOn runs a server on l until the test ends.
func serveOn(t testing.TB, l net.Listener, cfg Config, store Store, policy Policy) *Server {
	t.Helper()
	srv := New(cfg, store, policy)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), clientWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return srv
}

// client is a raw test client.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, clientWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// send writes raw octets in one write.
func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(clientWait))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// expect reads exactly len(want) octets and compares them.
func (c *client) expect(want string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(clientWait))
	got := make([]byte, len(want))
	n, err := io.ReadFull(c.r, got)
	if err != nil || string(got) != want {
		c.t.Fatalf("read: got %q (err %v), want %q", got[:n], err, want)
	}
}

// expectPrefix reads one reply line and checks its start.
func (c *client) expectPrefix(prefix string) string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(clientWait))
	line, err := c.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, prefix) {
		c.t.Fatalf("read: got %q (err %v), want prefix %q", line, err, prefix)
	}
	return line
}

// expectClosed checks the server closes the connection with nothing more.
func (c *client) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(clientWait))
	b, err := c.r.ReadByte()
	if err == nil {
		rest, _ := c.r.Peek(c.r.Buffered())
		c.t.Fatalf("expected close, got %q", append([]byte{b}, rest...))
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		c.t.Fatalf("expected close, got error %v", err)
	}
}

// expectSilence checks nothing arrives for d.
func (c *client) expectSilence(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	if b, err := c.r.ReadByte(); err == nil {
		c.t.Fatalf("expected no reply yet, got %q", b)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		c.t.Fatalf("expected no reply yet, got error %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || errors.Is(err, net.ErrClosed))
}

// runScript plays a transcript: "C: x" lines are sent with CRLF appended,
// consecutive ones in one write (a pipelined group); "c: x" sends x without
// CRLF; "S: x" lines are the server's reply lines, compared byte for byte;
// "CLOSED" expects the server to close the connection.
func runScript(t *testing.T, addr string, script []string) {
	t.Helper()
	c := dial(t, addr)
	var out, in bytes.Buffer
	flush := func() {
		if out.Len() > 0 {
			c.send(out.String())
			out.Reset()
		}
		if in.Len() > 0 {
			c.expect(in.String())
			in.Reset()
		}
	}
	for _, step := range script {
		switch {
		case strings.HasPrefix(step, "C: "):
			if in.Len() > 0 {
				flush()
			}
			out.WriteString(step[3:] + "\r\n")
		case strings.HasPrefix(step, "c: "):
			if in.Len() > 0 {
				flush()
			}
			out.WriteString(step[3:])
		case strings.HasPrefix(step, "S: "):
			if out.Len() > 0 {
				c.send(out.String())
				out.Reset()
			}
			in.WriteString(step[3:] + "\r\n")
		case step == "CLOSED":
			flush()
			c.expectClosed()
		default:
			t.Fatalf("bad script step %q", step)
		}
	}
	flush()
}
