package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clientEHLO is the name the test client gives in EHLO.
const clientEHLO = "client.test"

// stepTimeout bounds each command-reply exchange of the test client.
const stepTimeout = 10 * time.Second

// reply is one SMTP reply as the test client read it.
type reply struct {
	code  int
	lines []string // text after "NNN-" / "NNN "
}

func (r reply) String() string {
	var b strings.Builder
	for i, l := range r.lines {
		if i > 0 {
			b.WriteString(" / ")
		}
		fmt.Fprintf(&b, "%03d %s", r.code, l)
	}
	return b.String()
}

// text is the reply's text, lines joined by a space.
func (r reply) text() string { return strings.Join(r.lines, " ") }

// client is a minimal SMTP client for sending into Ferry.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dial connects to addr, checks the 220 greeting and sends EHLO.
func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, stepTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	c.expect(220, c.read())
	c.expect(250, c.cmd("EHLO %s", clientEHLO))
	return c
}

// read reads one reply, failing the test on an I/O or syntax error.
func (c *client) read() reply {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(stepTimeout))
	var r reply
	for n := 0; n < 100; n++ {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading reply: %v (so far %v)", err, r)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			c.t.Fatalf("short reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			c.t.Fatalf("reply line %q: %v", line, err)
		}
		r.code = code
		if len(line) == 3 {
			r.lines = append(r.lines, "")
			return r
		}
		r.lines = append(r.lines, line[4:])
		if line[3] == ' ' {
			return r
		}
	}
	c.t.Fatalf("reply longer than 100 lines")
	return r
}

// write sends raw octets.
func (c *client) write(p []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(stepTimeout))
	if _, err := c.conn.Write(p); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// cmd sends one command line and returns the reply.
func (c *client) cmd(format string, args ...any) reply {
	c.t.Helper()
	c.write([]byte(fmt.Sprintf(format, args...) + "\r\n"))
	return c.read()
}

// expect fails the test unless r has the code want.
func (c *client) expect(want int, r reply) reply {
	c.t.Helper()
	if r.code != want {
		c.t.Fatalf("got reply %v, want %d", r, want)
	}
	return r
}

// data sends DATA, the dot-stuffed content and the final dot, and returns
// the reply to the content (RFC 5321 §4.5.2).
func (c *client) data(content []byte) reply {
	c.t.Helper()
	c.expect(354, c.cmd("DATA"))
	c.write(dotStuff(content))
	return c.read()
}

// send runs one transaction; mailParams follow the reverse path (e.g.
// "BODY=8BITMIME"). It expects every step to succeed and returns the queue
// ID from "250 … queued as ID".
func (c *client) send(from string, rcpts []string, mailParams string, content []byte) string {
	c.t.Helper()
	mail := "MAIL FROM:<" + from + ">"
	if mailParams != "" {
		mail += " " + mailParams
	}
	c.expect(250, c.cmd("%s", mail))
	for _, r := range rcpts {
		c.expect(250, c.cmd("RCPT TO:<%s>", r))
	}
	r := c.expect(250, c.data(content))
	_, id, ok := strings.Cut(r.text(), "queued as ")
	if !ok || strings.TrimSpace(id) == "" {
		c.t.Fatalf("250 reply without a queue ID: %v", r)
	}
	return strings.Fields(id)[0]
}

// quit ends the session.
func (c *client) quit() {
	c.t.Helper()
	c.expect(221, c.cmd("QUIT"))
	c.conn.Close()
}

// dotStuff returns content with a CRLF at its end if missing, every line
// that starts with "." doubled, and the terminating ".CRLF".
func dotStuff(content []byte) []byte {
	var b bytes.Buffer
	if len(content) > 0 && !bytes.HasSuffix(content, []byte("\r\n")) {
		content = append(append([]byte(nil), content...), '\r', '\n')
	}
	for len(content) > 0 {
		i := bytes.Index(content, []byte("\r\n"))
		line := content[:i+2]
		content = content[i+2:]
		if line[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// bodyParam is the MAIL parameter for content: BODY=8BITMIME when it has an
// octet above 127 (RFC 6152), none otherwise.
func bodyParam(content []byte) string {
	for _, c := range content {
		if c > 127 {
			return "BODY=8BITMIME"
		}
	}
	return ""
}

// sendOne opens a session to addr, sends one message and quits.
func sendOne(t *testing.T, addr, from string, rcpts []string, content []byte) string {
	t.Helper()
	c := dial(t, addr)
	id := c.send(from, rcpts, bodyParam(content), content)
	c.quit()
	return id
}
