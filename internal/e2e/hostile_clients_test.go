package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// randomLine returns a line of 1 to 200 random octets other than CR and LF
// whose first octet is above 127, so it is never a command.
func randomLine(rng *rand.Rand) string {
	b := make([]byte, 1+rng.IntN(200))
	for i := range b {
		for b[i] == 0 || b[i] == '\r' || b[i] == '\n' {
			b[i] = byte(rng.IntN(256))
		}
	}
	b[0] |= 0x80
	return string(b)
}

// garbageLines: 30 lines of random octets in one write get 500 5.5.2 each
// until the 20th error, then 421 4.7.0 and the connection closes.
func garbageLines(addr, src string, deadline time.Time, rng *rand.Rand) error {
	c, err := dialFrom(src, addr, deadline)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if err := c.greet(); err != nil {
		return err
	}
	var b strings.Builder
	for i := 0; i < 30; i++ {
		b.WriteString(randomLine(rng) + "\r\n")
	}
	if err := c.send(b.String()); err != nil {
		return err
	}
	return tooManyErrors(c, 20)
}

// tooManyErrors reads n replies of 500 5.5.2, then 421 4.7.0, then the end
// of the connection.
func tooManyErrors(c *rawConn, n int) error {
	for i := 0; i < n; i++ {
		if _, err := c.expect(500, "5.5.2"); err != nil {
			return fmt.Errorf("error reply %d: %w", i+1, err)
		}
	}
	if _, err := c.expect(421, "4.7.0"); err != nil {
		return fmt.Errorf("after %d errors: %w", n, err)
	}
	return c.expectClosed(0)
}

// nulOctets: command lines holding a NUL are refused with 500 5.5.2, one
// by one, and the session still works afterwards.
func nulOctets(addr, src string, deadline time.Time, _ *rand.Rand) error {
	c, err := dialFrom(src, addr, deadline)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if _, err := c.expect(220, ""); err != nil {
		return err
	}
	return c.run(
		step{"EHLO a\x00b", 500, "5.5.2"},
		step{"\x00\x00\x00\x00", 500, "5.5.2"},
		step{"NOOP\x00", 500, "5.5.2"},
		step{"EHLO hostile.test", 250, ""},
		step{"MAIL FROM:<a\x00b@example.com>", 500, "5.5.2"},
		step{"\x00MAIL FROM:<a@example.com>", 500, "5.5.2"},
		step{"MAIL FROM:<nul@hostile.test>", 250, ""},
		step{"RCPT TO:<user@example.com\x00>", 500, "5.5.2"},
		step{"QUIT", 221, ""},
	)
}

// longLines: a 100 KB command line gets 500 5.5.2, at any stage, and the
// session goes on.
func longLines(addr, src string, deadline time.Time, _ *rand.Rand) error {
	c, err := dialFrom(src, addr, deadline)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if _, err := c.expect(220, ""); err != nil {
		return err
	}
	long := strings.Repeat("a", 100<<10)
	return c.run(
		step{"EHLO " + long, 500, "5.5.2"},
		step{"EHLO hostile.test", 250, ""},
		step{"NOOP " + long, 500, "5.5.2"},
		step{"MAIL FROM:<" + long + "@example.com>", 500, "5.5.2"},
		step{"NOOP", 250, ""},
		step{"QUIT", 221, ""},
	)
}

// binaryBeforeEHLO: 64 KB of random octets sent before the greeting is
// even read; Ferry still greets, refuses each line, and hangs up with 421
// 4.7.0 after 20 errors.
func binaryBeforeEHLO(addr, src string, deadline time.Time, rng *rand.Rand) error {
	c, err := dialFrom(src, addr, deadline)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString(randomLine(rng) + "\n")
	}
	// The server stops reading after the 421; the rest may not fit in
	// the socket buffers, so write in the background.
	go c.send(b.String())
	if _, err := c.expect(220, ""); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	return tooManyErrors(c, 20)
}

// tlsOnPlainPort: a TLS ClientHello, before and after the greeting, is
// refused line by line as no command (500 5.5.2); QUIT still ends the
// session.
func tlsOnPlainPort(addr, src string, deadline time.Time, _ *rand.Rand) error {
	hello, err := clientHello()
	if err != nil {
		return err
	}
	lines := strings.Count(string(hello), "\n") + 1
	for _, early := range []bool{true, false} {
		c, err := dialFrom(src, addr, deadline)
		if err != nil {
			return err
		}
		defer c.conn.Close()
		if early {
			if err := c.send(string(hello)); err != nil {
				return err
			}
		}
		if _, err := c.expect(220, ""); err != nil {
			return fmt.Errorf("greeting: %w", err)
		}
		if !early {
			if err := c.send(string(hello)); err != nil {
				return err
			}
		}
		if err := c.send("\r\nQUIT\r\n"); err != nil {
			return err
		}
		if err := afterClientHello(c, lines, early); err != nil {
			return err
		}
	}
	return nil
}

// afterClientHello reads the replies to the ClientHello's lines and QUIT:
// 500 5.5.2 for each line, then 221. A line that happens to parse as a
// command, coming ahead of the replies before PIPELINING was offered,
// ends the session with 554 5.5.0 instead.
func afterClientHello(c *rawConn, lines int, early bool) error {
	for i := 0; i <= lines; i++ {
		rep, err := c.readReply()
		switch {
		case err != nil:
			return fmt.Errorf("reply %d after a ClientHello of %d lines (early %v): %w", i+1, lines, early, err)
		case rep.Code == 221:
			return nil
		case rep.Code == 554 && strings.HasPrefix(rep.Text(), "5.5.0"):
			return c.expectClosed(0)
		case rep.Code != 500 || !strings.HasPrefix(rep.Text(), "5.5.2"):
			return fmt.Errorf("ClientHello line %d of %d (early %v): got %v, want 500 5.5.2", i+1, lines, early, rep)
		}
	}
	return fmt.Errorf("more replies than ClientHello lines (%d) and QUIT", lines)
}

// noopFlood: 10,000 NOOPs in one write after EHLO (PIPELINING offered)
// get 10,000 replies 250, read while still writing.
func noopFlood(addr, src string, deadline time.Time, _ *rand.Rand) error {
	c, err := dialFrom(src, addr, deadline)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if err := c.greet(); err != nil {
		return err
	}
	const n = 10000
	werr := make(chan error, 1)
	go func() { werr <- c.send(strings.Repeat("NOOP\r\n", n)) }()
	for i := 0; i < n; i++ {
		if _, err := c.expect(250, "2.0.0"); err != nil {
			return fmt.Errorf("NOOP %d of %d: %w", i+1, n, err)
		}
	}
	if err := <-werr; err != nil {
		return err
	}
	return c.cmd("QUIT", 221, "")
}

// noopFloodBeforeEHLO: commands pipelined before EHLO, when PIPELINING
// has not been offered, end the session with 554 5.5.0 (Postfix's
// smtpd_forbid_unauth_pipelining).
func noopFloodBeforeEHLO(addr, src string, deadline time.Time, _ *rand.Rand) error {
	c, err := dialFrom(src, addr, deadline)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if _, err := c.expect(220, ""); err != nil {
		return err
	}
	go c.send(strings.Repeat("NOOP\r\n", 10000))
	if _, err := c.expect(554, "5.5.0"); err != nil {
		return err
	}
	return c.expectClosed(0)
}

// halfOpen returns the half-open case for the relay r: clients that stop
// reading. Half of them say nothing, the others send EHLO (and read its
// reply, as EHLO must end a pipelined group, RFC 2920 §3.1) and then
// 2,000 NOOPs without reading (their replies, 28 KB, fit the socket
// buffers, so the server is cut off by its idle timeout, not stuck in a
// write until its 5-minute write timeout). All are cut off by the idle timeouts (3 s
// here), the last thing sent being 421 4.4.2. The client reads only once
// the relay has logged the end of its session, so nothing depends on how
// long the timeout takes to fire on a busy machine.
func halfOpen(r *relay) func(addr, src string, deadline time.Time, rng *rand.Rand) error {
	return func(addr, src string, deadline time.Time, rng *rand.Rand) error {
		c, err := dialFrom(src, addr, deadline)
		if err != nil {
			return err
		}
		defer c.conn.Close()
		silent := rng.IntN(2) == 0
		if !silent {
			if err := c.greet(); err != nil {
				return err
			}
			if err := c.send(strings.Repeat("NOOP\r\n", 2000)); err != nil {
				return err
			}
		}
		if err := waitSessionEnd(r, c.conn.LocalAddr().String(), deadline); err != nil {
			return fmt.Errorf("silent %v: %w", silent, err)
		}
		var last testrelay.Reply
		for {
			rep, err := c.readReply()
			if err != nil {
				if last.Code == 421 && strings.HasPrefix(last.Text(), "4.4.2") {
					return nil // read the 421, then the end of the connection
				}
				return fmt.Errorf("silent %v: last reply %v before %v; want 421 4.4.2 and the end", silent, last, err)
			}
			last = rep
		}
	}
}

// waitSessionEnd waits until r logs the end of the session from the client
// address local ("ip:port"), or deadline passes.
func waitSessionEnd(r *relay, local string, deadline time.Time) error {
	for len(r.LogLines("msg="+maillog.EventDisconnect, "client="+local)) == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no disconnect logged for %s", local)
		}
		select {
		case <-r.Done():
			return fmt.Errorf("ferry serve exited before the session of %s ended", local)
		case <-time.After(10 * time.Millisecond): // poll the log
		}
	}
	return nil
}

// contentWithoutData: message lines sent after RCPT without DATA are each
// an unknown command (500 5.5.2); nothing is queued.
func contentWithoutData(addr, src string, deadline time.Time, _ *rand.Rand) error {
	c, err := dialFrom(src, addr, deadline)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if err := c.greet(); err != nil {
		return err
	}
	if err := c.run(step{"MAIL FROM:<nodata@hostile.test>", 250, ""}, step{"RCPT TO:<user@example.com>", 250, ""}); err != nil {
		return err
	}
	lines := []string{"From: <nodata@hostile.test>", "Subject: no DATA", "", "body", "."}
	if err := c.send(strings.Join(lines, "\r\n") + "\r\n"); err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := c.expect(500, "5.5.2"); err != nil {
			return fmt.Errorf("content line %q without DATA: %w", l, err)
		}
	}
	// The transaction is still open but holds no content: RSET drops it.
	return c.run(step{"RSET", 250, ""}, step{"QUIT", 221, ""})
}

// recipientOvershoot: 300 pipelined RCPTs against max_recipients = 100 get
// 100 replies 250 and 200 replies 452 4.5.3, which are not session errors
// (no 421 although far more than max_errors).
func recipientOvershoot(addr, src string, deadline time.Time, _ *rand.Rand) error {
	c, err := dialFrom(src, addr, deadline)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if err := c.greet(); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("MAIL FROM:<many@hostile.test>\r\n")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "RCPT TO:<r%03d@example.com>\r\n", i)
	}
	if err := c.send(b.String()); err != nil {
		return err
	}
	if _, err := c.expect(250, "2.1.0"); err != nil {
		return err
	}
	for i := 0; i < 300; i++ {
		code, enh := 250, "2.1.5"
		if i >= 100 {
			code, enh = 452, "4.5.3"
		}
		if _, err := c.expect(code, enh); err != nil {
			return fmt.Errorf("RCPT %d: %w", i+1, err)
		}
	}
	return c.run(step{"RSET", 250, ""}, step{"QUIT", 221, ""})
}

// perIPLimit: 55 connections from one address; the first 50 are greeted,
// the rest get 421 4.7.0 and are closed. It runs against a relay whose
// idle timeouts are far longer than any setup can take, so no greeted
// connection is cut off (freeing its slot) before the 51st is opened.
func perIPLimit(addr, src string, deadline time.Time, _ *rand.Rand) error {
	var conns []*rawConn
	defer func() {
		for _, c := range conns {
			c.conn.Close()
		}
	}()
	for i := 0; i < 55; i++ {
		c, err := dialFrom(src, addr, deadline)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		code, enh := 220, ""
		if i >= 50 {
			code, enh = 421, "4.7.0"
		}
		if _, err := c.expect(code, enh); err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		if i >= 50 {
			if err := c.expectClosed(0); err != nil {
				return fmt.Errorf("connection %d: %w", i+1, err)
			}
		}
	}
	return nil
}
