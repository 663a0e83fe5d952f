package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

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

// client is a minimal SMTP client, one command at a time (no pipelining),
// for sending into Ferry or Postfix.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	ehlo reply
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
	c.ehlo = c.expect(250, c.cmd("EHLO client.test"))
	return c
}

// read reads one reply, failing the test on an I/O or syntax error.
func (c *client) read() reply {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(stepTimeout))
	var r reply
	for range 100 {
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
	_ = c.conn.SetWriteDeadline(time.Now().Add(stepTimeout))
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

// send runs one transaction with BODY=8BITMIME when content has an octet
// above 127 (RFC 6152 §2), expecting every step to succeed, and returns
// the reply to the content.
func (c *client) send(from, rcpt string, content []byte) reply {
	c.t.Helper()
	mail := "MAIL FROM:<" + from + ">"
	if has8Bit(content) {
		mail += " BODY=8BITMIME"
	}
	c.expect(250, c.cmd("%s", mail))
	c.expect(250, c.cmd("RCPT TO:<%s>", rcpt))
	c.expect(354, c.cmd("DATA"))
	c.write(dotStuff(content))
	return c.expect(250, c.read())
}

// quit ends the session.
func (c *client) quit() {
	c.t.Helper()
	c.expect(221, c.cmd("QUIT"))
	_ = c.conn.Close()
}

// dotStuff returns content with a CRLF at its end if missing, every line
// that starts with "." doubled, and the terminating ".CRLF" (RFC 5321
// §4.5.2).
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

// has8Bit reports whether p holds an octet above 127.
func has8Bit(p []byte) bool {
	for _, c := range p {
		if c > 127 {
			return true
		}
	}
	return false
}

// testMessage is one message of testdata/.
type testMessage struct {
	name string // file name without ".eml"
	data []byte // CRLF line ends, as on the wire
}

// rcpt is the recipient a test gives this message, so that the captured
// copy can be told apart: "NAME@DOMAIN".
func (m testMessage) rcpt(domain string) string { return m.name + "@" + domain }

// loadMessages reads every testdata/*.eml, sorted by name.
func loadMessages(t *testing.T) []testMessage {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("testdata holds %d messages, want at least 5", len(files))
	}
	var out []testMessage
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, testMessage{name: strings.TrimSuffix(filepath.Base(f), ".eml"), data: data})
	}
	return out
}
