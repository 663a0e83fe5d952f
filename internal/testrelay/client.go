package testrelay

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

// ClientEHLO is the name the test client gives in EHLO.
const ClientEHLO = "client.test"

// StepTimeout bounds each command-reply exchange of the test client.
const StepTimeout = 60 * time.Second

// maxReplyLines bounds the lines of one reply the client reads.
const maxReplyLines = 100

// Reply is one SMTP reply as the test client read it.
type Reply struct {
	Code  int
	Lines []string // text after "NNN-" / "NNN "
}

// String returns the reply as "NNN line / NNN line …".
func (r Reply) String() string {
	var b strings.Builder
	for i, l := range r.Lines {
		if i > 0 {
			b.WriteString(" / ")
		}
		fmt.Fprintf(&b, "%03d %s", r.Code, l)
	}
	return b.String()
}

// Text returns the reply's text, lines joined by a space.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// Client is a minimal SMTP client, one command at a time (no pipelining),
// for sending into Ferry or another MTA. Every I/O or protocol error fails
// the test.
type Client struct {
	t testing.TB
	// Conn is the connection, for tests that write or read raw octets.
	Conn net.Conn
	// R reads from Conn; use it rather than Conn for reading.
	R *bufio.Reader
	// EHLO is the server's reply to the client's EHLO.
	EHLO Reply
}

// Dial connects to addr, checks the 220 greeting and sends
// "EHLO client.test", expecting 250. The connection is closed when the
// test ends.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, StepTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &Client{t: t, Conn: conn, R: bufio.NewReader(conn)}
	t.Cleanup(func() { _ = conn.Close() })
	c.Expect(220, c.Read())
	c.EHLO = c.Expect(250, c.Cmd("EHLO %s", ClientEHLO))
	return c
}

// Read reads one reply (at most 100 lines, each within StepTimeout).
func (c *Client) Read() Reply {
	c.t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(StepTimeout))
	var r Reply
	for range maxReplyLines {
		line, err := c.R.ReadString('\n')
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
		r.Code = code
		if len(line) == 3 {
			r.Lines = append(r.Lines, "")
			return r
		}
		r.Lines = append(r.Lines, line[4:])
		if line[3] == ' ' {
			return r
		}
	}
	c.t.Fatalf("reply longer than %d lines", maxReplyLines)
	return r
}

// Write sends raw octets.
func (c *Client) Write(p []byte) {
	c.t.Helper()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(StepTimeout))
	if _, err := c.Conn.Write(p); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Cmd sends one command line (format and args as for fmt.Sprintf, CRLF
// added) and returns the reply.
func (c *Client) Cmd(format string, args ...any) Reply {
	c.t.Helper()
	c.Write([]byte(fmt.Sprintf(format, args...) + "\r\n"))
	return c.Read()
}

// Expect fails the test unless r has the code want, and returns r.
func (c *Client) Expect(want int, r Reply) Reply {
	c.t.Helper()
	if r.Code != want {
		c.t.Fatalf("got reply %v, want %d", r, want)
	}
	return r
}

// Data sends DATA (expecting 354), the dot-stuffed content and the final
// dot, and returns the reply to the content (RFC 5321 §4.5.2).
func (c *Client) Data(content []byte) Reply {
	c.t.Helper()
	c.Expect(354, c.Cmd("DATA"))
	c.Write(DotStuff(content))
	return c.Read()
}

// Send runs one transaction; mailParams follow the reverse path (e.g.
// "BODY=8BITMIME", see BodyParam). It expects 250 to MAIL, every RCPT and
// the content, and returns the reply to the content.
func (c *Client) Send(from string, rcpts []string, mailParams string, content []byte) Reply {
	c.t.Helper()
	mail := "MAIL FROM:<" + from + ">"
	if mailParams != "" {
		mail += " " + mailParams
	}
	c.Expect(250, c.Cmd("%s", mail))
	for _, r := range rcpts {
		c.Expect(250, c.Cmd("RCPT TO:<%s>", r))
	}
	return c.Expect(250, c.Data(content))
}

// SendID is Send that also requires a queue ID in the reply ("250 … queued
// as ID") and returns that ID.
func (c *Client) SendID(from string, rcpts []string, mailParams string, content []byte) string {
	c.t.Helper()
	r := c.Send(from, rcpts, mailParams, content)
	_, id, ok := strings.Cut(r.Text(), "queued as ")
	if !ok || strings.TrimSpace(id) == "" {
		c.t.Fatalf("250 reply without a queue ID: %v", r)
	}
	return strings.Fields(id)[0]
}

// Quit sends QUIT, expects 221 and closes the connection.
func (c *Client) Quit() {
	c.t.Helper()
	c.Expect(221, c.Cmd("QUIT"))
	_ = c.Conn.Close()
}

// SendOne opens a session to addr, sends one message (with BodyParam's
// MAIL parameter), quits, and returns the queue ID.
func SendOne(t testing.TB, addr, from string, rcpts []string, content []byte) string {
	t.Helper()
	c := Dial(t, addr)
	id := c.SendID(from, rcpts, BodyParam(content), content)
	c.Quit()
	return id
}

// DotStuff returns content with a CRLF at its end if missing, every line
// that starts with "." doubled, and the terminating ".CRLF" (RFC 5321
// §4.5.2).
func DotStuff(content []byte) []byte {
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

// Has8Bit reports whether p holds an octet above 127.
func Has8Bit(p []byte) bool {
	for _, c := range p {
		if c > 127 {
			return true
		}
	}
	return false
}

// BodyParam returns the MAIL parameter for content: "BODY=8BITMIME" when
// it has an octet above 127 (RFC 6152 §2), "" otherwise.
func BodyParam(content []byte) string {
	if Has8Bit(content) {
		return "BODY=8BITMIME"
	}
	return ""
}
