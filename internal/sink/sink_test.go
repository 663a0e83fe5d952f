package sink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// conv is a scripted SMTP conversation with a sink.
type conv struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *conv {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conv{t: t, conn: c, r: bufio.NewReader(c)}
}

// do sends s (when not empty) and checks the server's answer is exactly want.
func (c *conv) do(s, want string) {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if s != "" {
		if _, err := io.WriteString(c.conn, s); err != nil {
			c.t.Fatal(err)
		}
	}
	got := make([]byte, len(want))
	if n, err := io.ReadFull(c.r, got); err != nil || string(got) != want {
		c.t.Fatalf("after %q: got %q (%v), want %q", s, got[:n], err, want)
	}
}

func startSink(t *testing.T, opts Options) *Sink {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func waitN(t *testing.T, s *Sink, n int) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKeywordsHonoured(t *testing.T) {
	s := startSink(t, Options{Keywords: []string{"SIZE", "PIPELINING", "HELP"}, MaxSize: 1000})
	c := dial(t, s.Addr())
	c.do("", "220 sink.test ESMTP Ferry\r\n")
	c.do("EHLO relay.test\r\n", "250-sink.test\r\n250-SIZE 1000\r\n250-PIPELINING\r\n250 HELP\r\n")
	c.do("MAIL FROM:<a@example.com> BODY=8BITMIME\r\n", "555 Unsupported option: BODY\r\n")
	c.do("MAIL FROM:<a@example.com> SIZE=1001\r\n", "552 Error: message size exceeds fixed limit\r\n")
	c.do("MAIL FROM:<a@example.com> SIZE=999\r\n", "250 Ok\r\n")
	c.do("BDAT 3 LAST\r\nabc", "502 Error: command not implemented\r\n")
	c.do("QUIT\r\n", "221 Bye\r\n")

	none := startSink(t, Options{Keywords: []string{}})
	c = dial(t, none.Addr())
	c.do("", "220 sink.test ESMTP Ferry\r\n")
	c.do("EHLO relay.test\r\n", "250 sink.test\r\n")
}

func TestNoESMTP(t *testing.T) {
	s := startSink(t, Options{NoESMTP: true})
	c := dial(t, s.Addr())
	c.do("", "220 sink.test SMTP Ferry\r\n")
	c.do("EHLO relay.test\r\n", "502 5.5.1 Error: command not implemented\r\n")
	c.do("HELO relay.test\r\n", "250 sink.test\r\n")
	c.do("MAIL FROM:<a@example.com>\r\n", "250 Ok\r\n")
	c.do("RCPT TO:<b@example.org>\r\n", "250 Ok\r\n")
	c.do("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	c.do("hi\r\n.\r\n", "250 Ok: queued as ")
	m := waitN(t, s, 1)
	if m[0].Envelope.Client.Protocol != "SMTP" || string(m[0].Data) != "hi\r\n" {
		t.Fatalf("message %+v", m[0])
	}
}

func mustRules(t *testing.T, specs ...string) []Rule {
	t.Helper()
	var rules []Rule
	for _, s := range specs {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	return rules
}

func TestScriptedReplies(t *testing.T) {
	s := startSink(t, Options{Rules: mustRules(t,
		"CONNECT:1=421 4.7.0 busy",
		"MAIL#1:*=451 4.3.0 try later",
		"MAIL:<>=550 5.7.1 no bounces",
		"RCPT:*@bad.example=550 5.1.1 no such user",
		"DATA:*@nodata.example=554 5.7.1 no data for you",
		"END:*@reject.example=554 5.7.1 content rejected",
	)})
	c := dial(t, s.Addr())
	c.do("", "421 4.7.0 busy\r\n")
	c = dial(t, s.Addr())
	c.do("", "220 sink.test ESMTP Ferry\r\n")
	c.do("HELO relay.test\r\n", "250 sink.test\r\n")
	c.do("MAIL FROM:<a@example.com>\r\n", "451 try later\r\n")
	c.do("MAIL FROM:<>\r\n", "550 no bounces\r\n")
	c.do("MAIL FROM:<a@example.com>\r\n", "250 Ok\r\n")
	c.do("RCPT TO:<x@BAD.example>\r\n", "550 no such user\r\n")
	c.do("RCPT TO:<x@nodata.example>\r\n", "250 Ok\r\n")
	c.do("DATA\r\n", "554 no data for you\r\n")
	c.do("MAIL FROM:<a@example.com>\r\n", "250 Ok\r\n")
	c.do("RCPT TO:<x@reject.example>\r\n", "250 Ok\r\n")
	c.do("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	c.do("hi\r\n.\r\n", "554 content rejected\r\n")
	c.do("MAIL FROM:<a@example.com>\r\n", "250 Ok\r\n")
	c.do("RCPT TO:<x@good.example>\r\n", "250 Ok\r\n")
	c.do("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	c.do("hi\r\n.\r\n", "250 Ok: queued as ")
	if m := waitN(t, s, 1); len(m) != 1 || m[0].Envelope.Rcpts[0].Addr.Domain != "good.example" {
		t.Fatalf("messages %+v", m)
	}
	if n := s.Connections(); n != 2 {
		t.Fatalf("Connections() = %d", n)
	}
}

func TestStrict7Bit(t *testing.T) {
	s := startSink(t, Options{Strict7Bit: true})
	c := dial(t, s.Addr())
	c.do("", "220 sink.test ESMTP Ferry\r\n")
	c.do("HELO relay.test\r\n", "250 sink.test\r\n")
	c.do("MAIL FROM:<a@example.com>\r\n", "250 Ok\r\n")
	c.do("RCPT TO:<b@example.org>\r\n", "250 Ok\r\n")
	c.do("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	c.do("Subject: x\r\n\r\ncaf\xc3\xa9\r\n.\r\n", "554 8-bit octet at offset 17, but BODY=8BITMIME was not given\r\n")
	c.do("EHLO relay.test\r\n", "250-sink.test\r\n")
	for i := 0; i < 8; i++ {
		c.r.ReadString('\n')
	}
	c.do("MAIL FROM:<a@example.com> BODY=8BITMIME\r\n", "250 2.1.0 Ok\r\n")
	c.do("RCPT TO:<b@example.org>\r\n", "250 2.1.5 Ok\r\n")
	c.do("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	c.do("Subject: x\r\n\r\ncaf\xc3\xa9\r\n.\r\n", "250 2.0.0 Ok: queued as ")
	if m := waitN(t, s, 1); m[0].Envelope.Body != smtp.Body8BitMIME {
		t.Fatalf("body %q", m[0].Envelope.Body)
	}
}

func TestCapture(t *testing.T) {
	dir := t.TempDir()
	s := startSink(t, Options{Dir: dir})
	c := dial(t, s.Addr())
	c.do("", "220 sink.test ESMTP Ferry\r\n")
	c.do("EHLO relay.test\r\n", "250-sink.test\r\n")
	for i := 0; i < 8; i++ {
		c.r.ReadString('\n')
	}
	long := strings.Repeat("x", 5000)
	c.do("MAIL FROM:<a@example.com> BODY=8BITMIME SIZE=100 RET=HDRS ENVID=QQ+2B1\r\n", "250 2.1.0 Ok\r\n")
	c.do("RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.org\r\n", "250 2.1.5 Ok\r\n")
	c.do("RCPT TO:<\"c d\"@example.org>\r\n", "250 2.1.5 Ok\r\n")
	c.do("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	c.do("Subject: caf\xc3\xa9\r\n\r\n..stuffed\r\n"+long+"\r\n.\r\n", "250 2.0.0 Ok: queued as ")
	id, _ := c.r.ReadString('\n')
	id = strings.TrimSuffix(id, "\r\n")
	want := "Subject: caf\xc3\xa9\r\n\r\n.stuffed\r\n" + long + "\r\n"
	m := waitN(t, s, 1)
	if m[0].ID != id || string(m[0].Data) != want {
		t.Fatalf("message %q data %q", m[0].ID, m[0].Data)
	}
	sc, data, err := ReadCapture(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Fatalf("capture %q, want %q", data, want)
	}
	if sc.ID != id || sc.From != "<a@example.com>" || sc.Helo != "relay.test" || sc.Protocol != "ESMTP" || sc.TLS ||
		sc.Params != (SidecarParams{Body: "8BITMIME", Size: 100, Ret: "HDRS", EnvID: "QQ+1"}) ||
		len(sc.Rcpts) != 2 || sc.Rcpts[0].To != "<b@example.org>" || sc.Rcpts[0].ORcpt != "rfc822;b@example.org" ||
		strings.Join(sc.Rcpts[0].Notify, ",") != "SUCCESS,FAILURE" || sc.Rcpts[1].To != "<\"c d\"@example.org>" ||
		sc.MailLine != "MAIL FROM:<a@example.com> BODY=8BITMIME SIZE=100 RET=HDRS ENVID=QQ+2B1" ||
		len(sc.RcptLines) != 2 || sc.Octets != len(want) || sc.Received.IsZero() || sc.Chunked {
		t.Fatalf("sidecar %+v", sc)
	}
	// BDAT content is captured as sent, binary included.
	c.do("MAIL FROM:<a@example.com> BODY=BINARYMIME\r\n", "250 2.1.0 Ok\r\n")
	c.do("RCPT TO:<b@example.org>\r\n", "250 2.1.5 Ok\r\n")
	c.do("BDAT 4\r\na\rb\n", "250 2.0.0 Ok: 4 octets received\r\n")
	c.do("BDAT 2 LAST\r\n\x00\xff", "250 2.0.0 Ok: queued as ")
	m = waitN(t, s, 2)
	if string(m[1].Data) != "a\rb\n\x00\xff" || !m[1].Chunked {
		t.Fatalf("BDAT capture %q", m[1].Data)
	}
}

func TestWaitTimeout(t *testing.T) {
	s := startSink(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Wait(ctx, 1); err == nil {
		t.Fatal("Wait returned without messages")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("sink still accepts connections after Close")
	}
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		in   string
		want string // Rule.String(), or "" for an error
	}{
		{"RCPT:*@bad.example=550 5.1.1 no such user", "RCPT:*@bad.example=550 5.1.1 no such user"},
		{"mail:*=451 4.3.0 try later", "MAIL:*=451 4.3.0 try later"},
		{"CONNECT:3=421 4.7.0 busy", "CONNECT#3:*=421 4.7.0 busy"},
		{"CONNECT:*=554 no service", "CONNECT:*=554 no service"},
		{"RCPT#2:x@y=450 4.2.0 greylisted", "RCPT#2:x@y=450 4.2.0 greylisted"},
		{"END:*=554", "END:*=554"},
		{"DATA:*=554 4.7.1 wrong class", ""},
		{"HELO:*=550 no", ""},
		{"RCPT:*", ""},
		{"RCPT=550 x", ""},
		{"RCPT#0:*=550 x", ""},
		{"CONNECT:x=421 busy", ""},
		{"RCPT:*=55 x", ""},
		{"RCPT:*=650 x", ""},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseRule(%q) = %v, want error", tt.in, r)
			}
			continue
		}
		if err != nil || r.String() != tt.want {
			t.Errorf("ParseRule(%q) = %q, %v; want %q", tt.in, r.String(), err, tt.want)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "a@b", true},
		{"*@bad.example", "x@bad.example", true},
		{"*@bad.example", "x@bad.example.org", false},
		{"a?c@*", "abc@x", true},
		{"a?c@*", "ac@x", false},
		{"*b*b*", "abxxb", true},
		{"<>", "<>", true},
	}
	for _, tt := range tests {
		if got := glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v", tt.pattern, tt.s, got)
		}
	}
}

func TestConcurrentClients(t *testing.T) {
	s := startSink(t, Options{Dir: t.TempDir()})
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			for _, cmd := range []string{"", "HELO c\r\n", "MAIL FROM:<a@example.com>\r\n", "RCPT TO:<b@example.org>\r\n", "DATA\r\n", "x\r\n.\r\n"} {
				if cmd != "" {
					io.WriteString(c, cmd)
				}
				line, err := r.ReadString('\n')
				if err != nil || line[0] > '3' {
					errs <- fmt.Errorf("after %q: %q %v", cmd, line, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	msgs := waitN(t, s, n)
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.ID] = true
	}
	if len(msgs) != n || len(ids) != n {
		t.Fatalf("%d messages with %d distinct IDs", len(msgs), len(ids))
	}
}
