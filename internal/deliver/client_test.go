package deliver

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/testrelay"
)

const plainMsg = "From: a@origin.example\r\nSubject: test\r\n\r\nHello.\r\n.leading dot\r\n"
const eightBitMsg = "From: a@origin.example\r\nSubject: test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln.\r\n"

func lease(items ...queue.Item) *queue.Lease {
	return &queue.Lease{Hop: "hop.test", Items: items}
}

// writeLog wraps connections to record each Write the client makes.
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, log: w}, nil
}

type loggedConn struct {
	net.Conn
	log *writeLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes = append(c.log.writes, string(p))
	c.log.mu.Unlock()
	return c.Conn.Write(p)
}

func TestPipelining(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		kw := []string{"8BITMIME"}
		if pipelining {
			kw = append(kw, "PIPELINING")
		}
		hop := newFakeHop(t, kw...)
		hop.script = func(verb, arg string, n, _ int) string {
			if verb == "RCPT" && strings.Contains(arg, "nobody@") {
				return "550 5.1.1 <nobody@hop.test>: Recipient address rejected: User unknown"
			}
			return ""
		}
		hop.start()
		q := newMemQueue()
		wl := &writeLog{}
		a, _ := testAgent(t, q, hop.route(), func(c *Config) { c.Dial = wl.dial })
		a.DeliverLease(context.Background(), lease(testMessage("P1", plainMsg, "one@hop.test", "nobody@hop.test", "two@hop.test")))
		q.expect(t, "P1", 0, queue.Sent, "250 2.0.0 Ok: queued")
		q.expect(t, "P1", 1, queue.Failed, "550 5.1.1 <nobody@hop.test>: Recipient address rejected: User unknown")
		q.expect(t, "P1", 2, queue.Sent, "250")
		wl.mu.Lock()
		var group string
		for _, w := range wl.writes {
			if strings.HasPrefix(w, "MAIL FROM:") {
				group = w
			}
		}
		wl.mu.Unlock()
		want := "MAIL FROM:<sender@origin.example>\r\nRCPT TO:<one@hop.test>\r\nRCPT TO:<nobody@hop.test>\r\nRCPT TO:<two@hop.test>\r\nDATA\r\n"
		if pipelining && group != want {
			t.Errorf("pipelined group = %q, want %q in one write", group, want)
		}
		if !pipelining && group != "MAIL FROM:<sender@origin.example>\r\n" {
			t.Errorf("without PIPELINING MAIL went out as %q", group)
		}
		_, msgs, _, _ := hop.snapshot()
		if len(msgs) != 1 || string(msgs[0]) != strings.Replace(plainMsg, "\r\n.leading", "\r\n..leading", 1) {
			t.Errorf("content on the wire = %q", msgs)
		}
	}
}

func TestHELOFallback(t *testing.T) {
	hop := newFakeHop(t, "8BITMIME")
	hop.ehloRefused = true
	hop.start()
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), nil)
	a.DeliverLease(context.Background(), lease(testMessage("H1", plainMsg, "x@hop.test")))
	q.expect(t, "H1", 0, queue.Sent, "250")
	_, _, cmds, _ := hop.snapshot()
	if len(cmds) < 2 || cmds[0] != "EHLO ferry.test" || cmds[1] != "HELO ferry.test" {
		t.Errorf("commands = %q", cmds)
	}
	if info, ok := a.Hops().Get(hop.target().HopKey()); !ok || info.ESMTP {
		t.Errorf("hop cache = %+v, %v; want ESMTP false", info, ok)
	}
}

func TestDeferThenSuccess(t *testing.T) {
	hop := newFakeHop(t, "PIPELINING")
	hop.script = func(verb, _ string, n, conn int) string {
		if verb == "RCPT" && conn == 1 {
			return "451 4.3.0 Temporary lookup failure"
		}
		return ""
	}
	hop.start()
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), nil)
	it := testMessage("D1", plainMsg, "x@hop.test")
	a.DeliverLease(context.Background(), lease(it))
	q.expect(t, "D1", 0, queue.Deferred, "451 4.3.0 Temporary lookup failure")
	a.Close() // the next attempt opens a new connection
	a2, _ := testAgent(t, q, hop.route(), nil)
	a2.DeliverLease(context.Background(), lease(it))
	q.expect(t, "D1", 0, queue.Sent, "250")
}

func TestPermanentFailures(t *testing.T) {
	// A 5xx to MAIL fails every recipient, with the full reply kept.
	hop := newFakeHop(t)
	hop.script = func(verb, _ string, n, _ int) string {
		if verb == "MAIL" {
			return "553-5.7.1 Sender rejected\n553 5.7.1 second line"
		}
		return ""
	}
	hop.start()
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), nil)
	a.DeliverLease(context.Background(), lease(testMessage("F1", plainMsg, "x@hop.test", "y@hop.test")))
	q.expect(t, "F1", 0, queue.Failed, "553 5.7.1 Sender rejected second line")
	q.expect(t, "F1", 1, queue.Failed, "553 5.7.1")
	if r := q.last(t, "F1", 0); len(r.Reply.Lines) != 2 {
		t.Errorf("full reply text not kept: %q", r.Reply.Lines)
	}
	_, _, cmds, _ := hop.snapshot()
	for _, c := range cmds {
		if strings.HasPrefix(c, "RCPT") || c == "DATA" {
			t.Errorf("sent %q after MAIL was refused", c)
		}
	}

	// A 5xx after the content fails every accepted recipient; a 4xx
	// after the content defers them; the connection stays usable.
	hop2 := newFakeHop(t, "PIPELINING")
	hop2.script = func(verb, _ string, n, _ int) string {
		switch {
		case verb == "." && n == 1:
			return "554 5.6.0 Content rejected"
		case verb == "." && n == 2:
			return "452 4.3.1 Insufficient system storage"
		}
		return ""
	}
	hop2.start()
	q2 := newMemQueue()
	a2, _ := testAgent(t, q2, hop2.route(), nil)
	a2.DeliverLease(context.Background(), lease(
		testMessage("F2", plainMsg, "x@hop.test", "y@hop.test"),
		testMessage("F3", plainMsg, "x@hop.test"),
		testMessage("F4", plainMsg, "x@hop.test")))
	q2.expect(t, "F2", 0, queue.Failed, "554 5.6.0 Content rejected")
	q2.expect(t, "F2", 1, queue.Failed, "554 5.6.0 Content rejected")
	q2.expect(t, "F3", 0, queue.Deferred, "452 4.3.1")
	q2.expect(t, "F4", 0, queue.Sent, "250")
	if _, _, _, conns := hop2.snapshot(); conns != 1 {
		t.Errorf("connections = %d, want 1", conns)
	}
}

func Test421MidTransaction(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		var kw []string
		if pipelining {
			kw = []string{"PIPELINING"}
		}
		hop := newFakeHop(t, kw...)
		hop.script = func(verb, _ string, n, _ int) string {
			if verb == "RCPT" && n == 3 {
				return "421 4.3.2 Shutting down"
			}
			if verb == "RCPT" && n == 2 {
				return "550 5.1.1 Unknown user"
			}
			return ""
		}
		hop.start()
		q := newMemQueue()
		a, _ := testAgent(t, q, hop.route(), nil)
		a.DeliverLease(context.Background(), lease(testMessage("R1", plainMsg, "a@hop.test", "b@hop.test", "c@hop.test", "d@hop.test")))
		q.expect(t, "R1", 0, queue.Deferred, "421 4.3.2 Shutting down") // accepted, not delivered
		q.expect(t, "R1", 1, queue.Failed, "550 5.1.1")                 // refused before the 421
		q.expect(t, "R1", 2, queue.Deferred, "421 4.3.2")
		q.expect(t, "R1", 3, queue.Deferred, "421 4.3.2") // never answered
	}
}

func TestDroppedConnection(t *testing.T) {
	hop := newFakeHop(t, "PIPELINING")
	hop.script = func(verb, _ string, n, _ int) string {
		if verb == "DATA" {
			return "DROP"
		}
		return ""
	}
	hop.start()
	q := newMemQueue()
	a, logs := testAgent(t, q, hop.route(), nil)
	a.DeliverLease(context.Background(), lease(testMessage("X1", plainMsg, "a@hop.test", "b@hop.test")))
	q.expect(t, "X1", 0, queue.Deferred, "451 4.4.2")
	q.expect(t, "X1", 1, queue.Deferred, "451 4.4.2")
	if !strings.Contains(logs.String(), "status=deferred") {
		t.Errorf("no deferred log line:\n%s", logs)
	}

	// Connection refused: nobody listens.
	port := testrelay.RefusedPort(t)
	q2 := newMemQueue()
	a2, _ := testAgent(t, q2, route.Route{Pattern: "*", Hops: []route.NextHop{{Host: "127.0.0.1", Port: port, NoMX: true}}}, nil)
	a2.DeliverLease(context.Background(), lease(testMessage("X2", plainMsg, "a@hop.test")))
	q2.expect(t, "X2", 0, queue.Deferred, "451 4.4.1 Connection to [127.0.0.1]:")
}

func TestTimeout(t *testing.T) {
	hop := newFakeHop(t, "PIPELINING")
	block := make(chan struct{})
	hop.script = func(verb, _ string, n, _ int) string {
		if verb == "MAIL" {
			<-block
			return "DROP"
		}
		return ""
	}
	hop.start()
	defer close(block)
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), func(c *Config) { c.Timeouts.Mail = 200 * time.Millisecond })
	start := time.Now()
	a.DeliverLease(context.Background(), lease(testMessage("T1", plainMsg, "a@hop.test")))
	q.expect(t, "T1", 0, queue.Deferred, "451 4.4.2")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("MAIL timeout of 200ms fired after %v", d)
	}
}

// TestResetAfterOpenTransaction: a transaction left open at the hop (every
// recipient refused after MAIL was accepted) is cleared with RSET before the
// next MAIL on the same connection; a completed one is not.
func TestResetAfterOpenTransaction(t *testing.T) {
	hop := newFakeHop(t, "PIPELINING")
	hop.script = func(verb, arg string, n, conn int) string {
		if verb == "RCPT" && strings.Contains(arg, "refused@") {
			return "550 5.1.1 no such user"
		}
		return ""
	}
	hop.start()
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), nil)
	a.DeliverLease(context.Background(), lease(
		testMessage("R1", plainMsg, "ok@hop.test"),
		testMessage("R2", plainMsg, "refused@hop.test"),
		testMessage("R3", plainMsg, "ok@hop.test"),
	))
	q.expect(t, "R1", 0, queue.Sent, "250")
	q.expect(t, "R2", 0, queue.Failed, "550")
	q.expect(t, "R3", 0, queue.Sent, "250")
	_, _, cmds, _ := hop.snapshot()
	var verbs []string
	for _, c := range cmds {
		if v, _, _ := strings.Cut(c, " "); v == "MAIL" || v == "RSET" {
			verbs = append(verbs, v)
		}
	}
	if got := strings.Join(verbs, ","); got != "MAIL,MAIL,RSET,MAIL" {
		t.Errorf("MAIL/RSET sequence %s, want MAIL,MAIL,RSET,MAIL", got)
	}
}

func TestManyMessagesOneConnection(t *testing.T) {
	hop := newFakeHop(t, "PIPELINING", "8BITMIME").start()
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), func(c *Config) { c.MaxMessagesPerConn = 4 })
	var items []queue.Item
	for i := range 6 {
		items = append(items, testMessage("M"+string(rune('a'+i)), plainMsg, "x@hop.test"))
	}
	a.DeliverLease(context.Background(), lease(items[:2]...))
	a.DeliverLease(context.Background(), lease(items[2:4]...)) // reuses the pooled connection, reaching the limit
	a.DeliverLease(context.Background(), lease(items[4:]...))  // needs a new one
	for _, it := range items {
		q.expect(t, it.Env.ID, 0, queue.Sent, "250")
	}
	// 6 messages at 4 per connection: two connections.
	_, msgs, cmds, conns := hop.snapshot()
	if conns != 2 || len(msgs) != 6 {
		t.Errorf("connections = %d, messages = %d; want 2 and 6", conns, len(msgs))
	}
	rsets, quits := 0, 0
	for _, c := range cmds {
		switch c {
		case "RSET":
			rsets++
		case "QUIT":
			quits++
		}
	}
	// RSET only checks the connection taken idle from the pool: after a
	// completed transaction the hop has reset itself (RFC 5321 §4.1.1.4).
	if rsets != 1 {
		t.Errorf("RSET sent %d times, want 1 (the pooled connection's check)", rsets)
	}
	// The second connection goes idle and is closed after IdleTimeout.
	deadline := time.Now().Add(time.Minute) // generous: only a failing test waits
	for quits < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		_, _, cmds, _ = hop.snapshot()
		quits = 0
		for _, c := range cmds {
			if c == "QUIT" {
				quits++
			}
		}
	}
	if quits != 2 {
		t.Errorf("QUIT sent %d times, want 2 (limit reached, idle timeout)", quits)
	}
}

func TestSize(t *testing.T) {
	hop := newFakeHop(t, "PIPELINING", "SIZE 100").start()
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), nil)
	big := plainMsg + strings.Repeat("x", 200) + "\r\n"
	a.DeliverLease(context.Background(), lease(testMessage("S1", big, "x@hop.test"), testMessage("S2", plainMsg, "y@hop.test")))
	q.expect(t, "S1", 0, queue.Failed, "552 5.3.4")
	q.expect(t, "S2", 0, queue.Sent, "250")
	_, _, cmds, _ := hop.snapshot()
	mails := mailCommands(cmds)
	want := "MAIL FROM:<sender@origin.example> SIZE=" + itoa(len(plainMsg))
	if len(mails) != 1 || mails[0] != want {
		t.Errorf("MAIL commands = %q, want only %q", mails, want)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
