package smtpd

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

// writeLog is a listener whose connections record every Write the server
// makes, so a test can tell how many writes a group of replies took.
type writeLog struct {
	net.Listener
	mu     sync.Mutex
	writes []string
}

func (l *writeLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, l: l}, nil
}

func (l *writeLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

type loggedConn struct {
	net.Conn
	l *writeLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, string(p))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// startLoggedServer is startServer on a listener that logs the server's writes.
func startLoggedServer(t testing.TB, cfg Config, store Store) (*writeLog, string) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &writeLog{Listener: inner}
	serveOn(t, l, cfg, store, nil)
	return l, inner.Addr().String()
}

// TestPipelinedGroupOneWrite sends pipelined groups (RFC 2920 §3.1) in one
// write each and checks, byte for byte, that the replies of each group
// come back in order and in one write: replies are flushed only when no
// further pipelined command is waiting in the input buffer.
func TestPipelinedGroupOneWrite(t *testing.T) {
	l, addr := startLoggedServer(t, testConfig(), &memStore{})
	c := dial(t, addr)
	c.expectPrefix("220 ")
	c.send("EHLO client.test\r\n")
	for !strings.HasPrefix(c.expectPrefix("250"), "250 ") {
	}
	groups := []struct{ send, want string }{
		{
			"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n",
			"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
		},
		{
			"Subject: t\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n",
			"250 2.0.0 Ok: queued as ID1\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n",
		},
	}
	for _, g := range groups {
		before := len(l.all())
		c.send(g.send)
		c.expect(g.want)
		w := l.all()[before:]
		if len(w) != 1 || w[0] != g.want {
			t.Errorf("replies to %q took %d writes %q, want one write %q", g.send, len(w), w, g.want)
		}
	}
}

// BenchmarkPipelinedTransaction runs whole transactions on one session,
// each as two pipelined groups (MAIL, RCPT, DATA; content, end of data),
// and reports the server's writes per transaction.
func BenchmarkPipelinedTransaction(b *testing.B) {
	l, addr := startLoggedServer(b, testConfig(), discardStore{})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	readLines := func(n int) {
		for range n {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			for len(line) > 3 && line[3] == '-' { // a multi-line reply
				if line, err = r.ReadString('\n'); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	readLines(1)
	io.WriteString(conn, "EHLO client.test\r\n")
	readLines(1)
	group := "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
	body := "Subject: t\r\n\r\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n", 50) + ".\r\n"
	start := len(l.all())
	b.ResetTimer()
	for range b.N {
		io.WriteString(conn, group)
		readLines(4)
		io.WriteString(conn, body)
		readLines(1)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(l.all())-start)/float64(b.N), "writes/msg")
}

// discardStore is a Store that reads and discards every message.
type discardStore struct{}

func (discardStore) NewID() string { return "ID" }

func (discardStore) Put(_ context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	_, err := io.Copy(io.Discard, body)
	return env.ID, err
}
