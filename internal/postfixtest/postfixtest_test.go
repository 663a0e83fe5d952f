package postfixtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// session is a scripted SMTP client on a plain connection.
type session struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *session {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, conn: c, r: bufio.NewReader(c)}
	s.expect("220")
	return s
}

// reply reads one (possibly multi-line) reply and returns its lines.
func (s *session) reply() []string {
	s.t.Helper()
	var lines []string
	for i := 0; i < 100; i++ {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read reply: %v (so far %q)", err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return lines
		}
	}
	s.t.Fatalf("reply longer than 100 lines: %q", lines)
	return nil
}

func (s *session) expect(code string) []string {
	s.t.Helper()
	lines := s.reply()
	if !strings.HasPrefix(lines[0], code) {
		s.t.Fatalf("got %q, want %s", lines, code)
	}
	return lines
}

func (s *session) cmd(line, code string) []string {
	s.t.Helper()
	if _, err := fmt.Fprintf(s.conn, "%s\r\n", line); err != nil {
		s.t.Fatalf("send %q: %v", line, err)
	}
	return s.expect(code)
}

// send transmits one message with DATA; data has CRLF line ends.
func (s *session) send(from string, rcpts []string, data string) {
	s.t.Helper()
	s.cmd("MAIL FROM:<"+from+">", "250")
	for _, r := range rcpts {
		s.cmd("RCPT TO:<"+r+">", "250")
	}
	s.cmd("DATA", "354")
	if _, err := s.conn.Write([]byte(data + ".\r\n")); err != nil {
		s.t.Fatal(err)
	}
	s.expect("250")
}

// keywords returns the EHLO keywords, upper case.
func keywords(lines []string) map[string]bool {
	kw := map[string]bool{}
	for _, l := range lines[1:] {
		f := strings.Fields(l[4:])
		if len(f) > 0 {
			kw[strings.ToUpper(f[0])] = true
		}
	}
	return kw
}

const testMessage = "From: a@client.test\r\n" +
	"To: b@dest.test\r\n" +
	"Subject: interop\r\n" +
	"Message-ID: <1@client.test>\r\n" +
	"\r\n" +
	"Line one.\r\n" +
	"..a line starting with a dot\r\n" +
	"Last line.\r\n"

func TestCaptureAndRelay(t *testing.T) {
	capture := Start(t, Options{Mode: ModeCapture})
	s := dial(t, capture.Addr())
	kw := keywords(s.cmd("EHLO client.test", "250"))
	if !kw["8BITMIME"] || !kw["PIPELINING"] {
		t.Errorf("capture instance EHLO lacks 8BITMIME/PIPELINING: %v", kw)
	}
	s.send("a@client.test", []string{"b@dest.test", "c@dest.test"}, testMessage)
	s.cmd("QUIT", "221")

	msgs := capture.WaitMessages(1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("captured %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Sender != "a@client.test" || strings.Join(m.Recipients, ",") != "b@dest.test,c@dest.test" || m.QueueID == "" {
		t.Errorf("envelope = %q %q %q", m.QueueID, m.Sender, m.Recipients)
	}
	if !bytes.HasPrefix(m.Data, []byte("Received: from client.test")) {
		t.Errorf("capture does not start with Postfix's Received field:\n%s", m.Data)
	}
	// Postfix adds Received: only; the rest arrives as sent, dot unstuffed.
	wantTail := strings.ReplaceAll(testMessage, "\r\n..a line", "\r\n.a line")
	if !bytes.HasSuffix(m.CRLF(), []byte(wantTail)) {
		t.Errorf("captured message:\n%q\nwant it to end with\n%q", m.CRLF(), wantTail)
	}
	if got, want := string(m.Body()), "Line one.\r\n.a line starting with a dot\r\nLast line.\r\n"; got != want {
		t.Errorf("Body() = %q, want %q", got, want)
	}

	// A relay instance in front of the capture one.
	relay := Start(t, Options{Mode: ModeRelay, RelayHost: capture.Addr(), Hostname: "relay.test"})
	s = dial(t, relay.Addr())
	s.cmd("EHLO client.test", "250")
	s.send("", []string{"d@elsewhere.test"}, strings.Replace(testMessage, "Subject: interop", "Subject: relayed", 1))
	s.cmd("QUIT", "221")

	msgs = capture.WaitMessages(2, 30*time.Second)
	m = msgs[1]
	if m.Sender != "" || len(m.Recipients) != 1 || m.Recipients[0] != "d@elsewhere.test" {
		t.Errorf("relayed envelope = %q %q", m.Sender, m.Recipients)
	}
	if !bytes.Contains(m.Data, []byte("Subject: relayed\n")) || bytes.Count(m.Data, []byte("Received: ")) != 2 {
		t.Errorf("relayed message lacks the subject or the two Received fields:\n%s", m.Data)
	}
	if log := relay.WaitLog(30*time.Second, func(l string) bool { return strings.Contains(l, "status=sent") }); !strings.Contains(log, "status=sent") {
		t.Errorf("relay log has no status=sent:\n%s", log)
	}
	if got := relay.Messages(); len(got) != 0 {
		t.Errorf("relay instance captured %d messages, want 0", len(got))
	}
}

func TestDiscardEHLOKeywords(t *testing.T) {
	in := Start(t, Options{DiscardEHLOKeywords: []string{"8bitmime", "CHUNKING"}})
	s := dial(t, in.Addr())
	kw := keywords(s.cmd("EHLO client.test", "250"))
	if kw["8BITMIME"] || kw["CHUNKING"] {
		t.Errorf("EHLO offers a discarded keyword: %v", kw)
	}
	if !kw["PIPELINING"] || !kw["SIZE"] {
		t.Errorf("EHLO lost keywords it should keep: %v", kw)
	}
	s.cmd("QUIT", "221")
}

func TestStopRemovesInstance(t *testing.T) {
	in := Start(t, Options{Hostname: "stop.test", ExtraMain: map[string]string{"message_size_limit": "2048"}})
	s := dial(t, in.Addr())
	lines := s.cmd("EHLO client.test", "250")
	if !strings.Contains(strings.Join(lines, "\n"), "SIZE 2048") {
		t.Errorf("ExtraMain message_size_limit not applied: %q", lines)
	}
	if !strings.HasPrefix(lines[0], "250-stop.test") {
		t.Errorf("Hostname not applied: %q", lines[0])
	}
	s.cmd("QUIT", "221")
	dir, pid := in.Dir(), in.masterPID()
	if pid <= 0 {
		t.Fatal("no master pid")
	}
	in.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("instance dir %s still there: %v", dir, err)
	}
	if processAlive(pid) {
		t.Errorf("master %d still running after Stop", pid)
	}
	// The port is free after Stop, so another test's server may have
	// taken it: only this instance's greeting is a failure.
	if c, err := net.DialTimeout("tcp", in.Addr(), time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		greeting, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(greeting, "220 stop.test ") {
			t.Errorf("%s still accepts connections after Stop: %q", in.Addr(), greeting)
		}
	}
}

func TestEightBitCapturedExactly(t *testing.T) {
	in := Start(t, Options{})
	s := dial(t, in.Addr())
	s.cmd("EHLO client.test", "250")
	body := "Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln \xff\xfe\r\n"
	s.cmd("MAIL FROM:<a@client.test> BODY=8BITMIME", "250")
	s.cmd("RCPT TO:<b@dest.test>", "250")
	s.cmd("DATA", "354")
	if _, err := s.conn.Write([]byte(body + ".\r\n")); err != nil {
		t.Fatal(err)
	}
	s.expect("250")
	s.cmd("QUIT", "221")
	m := in.WaitMessages(1, 20*time.Second)[0]
	if !bytes.HasSuffix(m.CRLF(), []byte(body)) {
		t.Errorf("8-bit message changed:\n got %q\nwant suffix %q", m.CRLF(), body)
	}
}
