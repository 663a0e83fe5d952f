package smtpd

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address src (127.0.0.x).
func dialFrom(t *testing.T, src, addr string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// TestCommandLineTotal: a command line trickled one octet at a time, each
// well within the old idle timeout, is cut off once the whole line has
// taken Timeouts.Command.
func TestCommandLineTotal(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Command = 500 * time.Millisecond
	_, addr := startServer(t, cfg, &memStore{}, nil)
	c := dial(t, addr)
	c.expectPrefix("220 ")
	// 40 octets, one every 100ms: 4s for the line, 8 times the limit.
	slowSender(t, c, "NOOP "+strings.Repeat("x", 33)+"\r\n", 100*time.Millisecond)
	c.expect(timeoutReply)
	c.expectClosed()
}

// phaseTimeoutClient sends complete lines, in turn, every 50ms (each far
// within Timeouts.Command) until the server answers 421, and returns that
// reply; at most 200 lines.
func phaseTimeoutClient(t *testing.T, c *client, lines ...string) string {
	t.Helper()
	for i := range 200 {
		c.send(lines[i%len(lines)] + "\r\n")
		r := c.expectPrefix("")
		if strings.HasPrefix(r, "421") {
			return r
		}
		time.Sleep(50 * time.Millisecond) // the client's own pace, not a wait for the server
	}
	t.Fatalf("no 421 after 200 lines of %q", lines)
	return ""
}

// TestPhaseTotals: complete lines at a steady pace, each far within
// Timeouts.Command, hold a connection only for the phase's total: NOOPs
// that never start a transaction (HelloPhase), transactions begun and
// reset without a message stored (HelloPhase too), RCPTs that never reach
// DATA (EnvelopePhase).
func TestPhaseTotals(t *testing.T) {
	tests := []struct {
		name  string
		set   func(*Timeouts)
		setup []string // command lines answered 250 first
		lines []string // sent in turn until 421
	}{
		{"hello", func(to *Timeouts) { to.HelloPhase = 600 * time.Millisecond }, []string{"HELO client.test"}, []string{"NOOP"}},
		{"MAIL and RSET", func(to *Timeouts) { to.HelloPhase = 600 * time.Millisecond }, []string{"HELO client.test"},
			[]string{"MAIL FROM:<a@example.org>", "RSET"}},
		{"envelope", func(to *Timeouts) { to.EnvelopePhase = 600 * time.Millisecond },
			[]string{"HELO client.test", "MAIL FROM:<a@example.org>"}, []string{"RCPT TO:<b@example.net>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.set(&cfg.Timeouts)
			_, addr := startServer(t, cfg, &memStore{}, nil)
			c := dial(t, addr)
			c.expectPrefix("220 ")
			for _, l := range tt.setup {
				c.send(l + "\r\n")
				c.expectPrefix("250 ")
			}
			// No enhanced codes after HELO (RFC 2034 §3).
			if r := phaseTimeoutClient(t, c, tt.lines...); r != "421 mx.test Error: timeout exceeded\r\n" {
				t.Errorf("reply %q, want the timeout", r)
			}
			c.expectClosed()
		})
	}
}

// TestPregreet: a client that talks before the greeting is refused with
// 554 5.5.1 as soon as it does, without waiting out the pause; one that
// waits gets the greeting; a trusted client gets it at once.
func TestPregreet(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.PregreetWait = time.Minute // the test never waits it out
	cfg.Trusted = func(a net.Addr) bool { return a.(*net.TCPAddr).IP.Equal(net.ParseIP("127.0.0.1")) }
	_, addr := startServer(t, cfg, &memStore{}, nil)

	early := dialFrom(t, "127.0.0.2", addr)
	early.send("EHLO client.test\r\n")
	early.expect("554 5.5.1 mx.test Error: protocol error: data sent before the greeting\r\n")
	early.expectClosed()

	trusted := dialFrom(t, "127.0.0.1", addr)
	trusted.expectPrefix("220 ")

	cfg.Timeouts.PregreetWait = 50 * time.Millisecond
	_, addr2 := startServer(t, cfg, &memStore{}, nil)
	patient := dialFrom(t, "127.0.0.2", addr2)
	patient.expectPrefix("220 ")
	patient.send("HELO client.test\r\n")
	patient.expectPrefix("250 ")
	patient.send("MAIL FROM:<a@example.org>\r\n")
	patient.expectPrefix("250 ")
	patient.send("RCPT TO:<b@example.net>\r\n")
	patient.expectPrefix("250 ")
	patient.send("DATA\r\n")
	patient.expectPrefix("354 ")
	patient.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	patient.expectPrefix("250 ")
	patient.send("QUIT\r\n")
	patient.expectPrefix("221 ")
}

// TestReservedConnections: once untrusted clients hold all but the
// reserved connections, the next untrusted one gets 421 4.7.0 while
// trusted clients, and an address that authenticated recently, still get
// in.
func TestReservedConnections(t *testing.T) {
	cfg := authConfig()
	cfg.MaxConnections = 6
	cfg.ReservedConnections = 3
	cfg.Trusted = func(a net.Addr) bool { return a.(*net.TCPAddr).IP.Equal(net.ParseIP("127.0.0.1")) }
	_, addr := startServer(t, cfg, &memStore{}, nil)

	// 127.0.0.3 authenticates once and leaves.
	u := dialFrom(t, "127.0.0.3", addr)
	u.expectPrefix("220 ")
	u.send("EHLO client.test\r\n")
	for !strings.HasPrefix(u.expectPrefix("250"), "250 ") {
	}
	u.send("AUTH PLAIN " + plainIR("", "bob", "hunter2") + "\r\nQUIT\r\n")
	u.expectPrefix("235 ")
	u.expectPrefix("221 ")
	u.expectClosed()

	for range 3 {
		dialFrom(t, "127.0.0.2", addr).expectPrefix("220 ")
	}
	dialFrom(t, "127.0.0.2", addr).expect("421 4.7.0 mx.test Error: too many connections\r\n")
	dialFrom(t, "127.0.0.1", addr).expectPrefix("220 ")
	dialFrom(t, "127.0.0.3", addr).expectPrefix("220 ")
	dialFrom(t, "127.0.0.1", addr).expectPrefix("220 ")
	// All six are used now: even a trusted client is refused.
	c := dialFrom(t, "127.0.0.1", addr)
	line, err := c.r.ReadString('\n')
	if err != nil && err != io.EOF || !strings.HasPrefix(line, "421 ") {
		t.Errorf("seventh connection: %q (err %v), want 421", line, err)
	}
}

// TestHelloPhaseRenewedByEachMessage: a session that stores a message
// every so often outlives HelloPhase: each stored message starts a new one.
func TestHelloPhaseRenewedByEachMessage(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.HelloPhase = 800 * time.Millisecond
	store := &memStore{}
	_, addr := startServer(t, cfg, store, nil)
	c := dial(t, addr)
	c.expectPrefix("220 ")
	c.send("HELO client.test\r\n")
	c.expectPrefix("250 ")
	for range 4 { // 4 × 300ms: past one HelloPhase
		time.Sleep(300 * time.Millisecond) // the client's own pace
		for _, l := range []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "DATA"} {
			c.send(l + "\r\n")
			c.expectPrefix("")
		}
		c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
		c.expectPrefix("250 ")
	}
	if n := len(store.messages()); n != 4 {
		t.Errorf("%d messages stored, want 4", n)
	}
}
