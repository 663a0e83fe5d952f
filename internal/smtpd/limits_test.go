package smtpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// openTransaction sends EHLO, MAIL and one RCPT and checks the replies.
func openTransaction(c *client) {
	c.t.Helper()
	c.expectPrefix("220 ")
	c.send("EHLO client.test\r\n")
	for {
		if l := c.expectPrefix("250"); strings.HasPrefix(l, "250 ") {
			break
		}
	}
	c.send("MAIL FROM:<a@example.com>\r\n")
	c.expect("250 2.1.0 Ok\r\n")
	c.send("RCPT TO:<b@example.org>\r\n")
	c.expect("250 2.1.5 Ok\r\n")
}

func TestTooManyRecipients(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRecipients = 100
	store := &memStore{}
	_, addr := startServer(t, cfg, store, nil)
	c := dial(t, addr)
	openTransaction(c)
	var cmds, replies strings.Builder
	for i := 2; i <= 101; i++ {
		fmt.Fprintf(&cmds, "RCPT TO:<r%d@example.org>\r\n", i)
		if i <= 100 {
			replies.WriteString("250 2.1.5 Ok\r\n")
		} else {
			replies.WriteString("452 4.5.3 Error: too many recipients\r\n")
		}
	}
	c.send(cmds.String())
	c.expect(replies.String())
	c.send("DATA\r\n")
	c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
	c.send("x\r\n.\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1\r\n")
	if m := store.messages(); len(m) != 1 || len(m[0].env.Rcpts) != 100 {
		t.Fatalf("stored %d messages, want 1 with 100 recipients", len(m))
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"few recipients", func(c *Config) { c.MaxRecipients = 99 }, false},
		{"binarymime without chunking", func(c *Config) { c.Keywords = []string{"BINARYMIME"} }, false},
		{"duplicate keyword", func(c *Config) { c.Keywords = []string{"SIZE", "size"} }, false},
		{"empty hostname", func(c *Config) { c.Hostname = "" }, false},
		{"custom keyword", func(c *Config) { c.Keywords = []string{"HELP", "X-EXPS GSSAPI NTLM"} }, true},
		{"SIZE with limit", func(c *Config) { c.Keywords, c.MaxMessageSize = []string{"SIZE 100"}, 0 }, true},
		{"SIZE conflict", func(c *Config) { c.Keywords, c.MaxMessageSize = []string{"SIZE 100"}, 200 }, false},
		{"SIZE syntax", func(c *Config) { c.Keywords = []string{"SIZE ten"} }, false},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		tt.mod(&cfg)
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.MaxRecipients = 10
	if err := New(bad, &memStore{}, nil).Serve(l); err == nil || errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve with invalid config: %v", err)
	}
}

func TestStoreErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"reply error", fmt.Errorf("policy: %w", &ReplyError{Reply: smtp.NewReply(554, "5.7.1", "Rejected by content filter")}),
			"554 5.7.1 Rejected by content filter\r\n"},
		{"disk full", fmt.Errorf("write segment: %w", syscall.ENOSPC), "452 4.3.1 Error: insufficient system storage\r\n"},
		{"other", errors.New("fsync: input/output error"), "451 4.3.0 Error: queue file write error\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{put: func(context.Context, *smtp.Envelope, []byte) error { return tt.err }}
			_, addr := startServer(t, testConfig(), store, nil)
			for _, bdat := range []bool{false, true} {
				c := dial(t, addr)
				openTransaction(c)
				if bdat {
					c.send("BDAT 3 LAST\r\nx\r\n")
				} else {
					c.send("DATA\r\n")
					c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
					c.send("x\r\n.\r\n")
				}
				c.expect(tt.want)
				c.send("NOOP\r\n")
				c.expect("250 2.0.0 Ok\r\n")
			}
			if n := len(store.messages()); n != 0 {
				t.Fatalf("%d messages stored", n)
			}
		})
	}
}

func TestReplyOnlyAfterPut(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	store := &memStore{put: func(context.Context, *smtp.Envelope, []byte) error {
		close(entered)
		<-release
		return nil
	}}
	_, addr := startServer(t, testConfig(), store, nil)
	c := dial(t, addr)
	openTransaction(c)
	c.send("DATA\r\n")
	c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
	c.send("x\r\n.\r\n")
	select {
	case <-entered:
	case <-time.After(clientWait):
		t.Fatal("Put not called")
	}
	c.expectSilence(100 * time.Millisecond)
	close(release)
	c.expect("250 2.0.0 Ok: queued as ID1\r\n")
}

func TestReceivedField(t *testing.T) {
	store := &memStore{}
	_, addr := startServer(t, testConfig(), store, nil)
	c := dial(t, addr)
	openTransaction(c)
	c.send("DATA\r\n")
	c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1\r\n")
	m := store.messages()
	if len(m) != 1 {
		t.Fatalf("%d messages", len(m))
	}
	re := regexp.MustCompile(`^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(Ferry\) with ESMTP id ID1\r\n\tfor <b@example\.org>;\r\n\t[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\nSubject: x\r\n\r\nbody\r\n$`)
	if !re.Match(m[0].body) {
		t.Fatalf("stored body %q", m[0].body)
	}
	env := m[0].env
	if env.ID != "ID1" || env.Client.Helo != "client.test" || env.Client.Protocol != "ESMTP" || env.From.Address() != "a@example.com" {
		t.Fatalf("envelope %+v", env)
	}
	if m[0].tx == nil || m[0].tx.MailLine != "MAIL FROM:<a@example.com>" || len(m[0].tx.RcptLines) != 1 {
		t.Fatalf("transaction %+v", m[0].tx)
	}
}

func TestReceivedLoop(t *testing.T) {
	for _, n := range []int{100, 101} {
		store := &memStore{}
		_, addr := startServer(t, testConfig(), store, nil)
		c := dial(t, addr)
		openTransaction(c)
		c.send("DATA\r\n")
		c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "Received: from hop%d.example by hop%d.example;\r\n\tSat, 28 Nov 2026 10:00:00 +0000\r\n", i, i+1)
		}
		b.WriteString("Subject: loop\r\n\r\nReceived: in the body does not count\r\n.\r\n")
		c.send(b.String())
		if n <= 100 {
			c.expect("250 2.0.0 Ok: queued as ID1\r\n")
		} else {
			c.expect("554 5.4.6 Error: too many \"Received\" header fields (mail loop)\r\n")
			if len(store.messages()) != 0 {
				t.Fatal("looping message stored")
			}
		}
	}
}

func TestConnectionLimits(t *testing.T) {
	t.Run("total", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxConnections = 2
		_, addr := startServer(t, cfg, &memStore{}, nil)
		a, b := dial(t, addr), dial(t, addr)
		a.expectPrefix("220 ")
		b.expectPrefix("220 ")
		c := dial(t, addr)
		c.expect("421 4.7.0 mx.test Error: too many connections\r\n")
		c.expectClosed()
		a.send("QUIT\r\n")
		a.expect("221 2.0.0 Bye\r\n")
		a.expectClosed()
		waitAdmitted(t, addr)
	})
	t.Run("per IP", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxConnectionsPerIP = 1
		_, addr := startServer(t, cfg, &memStore{}, nil)
		a := dial(t, addr)
		a.expectPrefix("220 ")
		c := dial(t, addr)
		c.expect("421 4.7.0 mx.test Error: too many connections\r\n")
		c.expectClosed()
		a.conn.Close()
		waitAdmitted(t, addr)
	})
}

// TestSlotFreeAfterQuit: a client that connects again as soon as it has
// read the 221 to its QUIT (one message per connection) finds its slot
// free, every time, even at a per-IP limit of one: the slot is given back
// before the 221 is written.
func TestSlotFreeAfterQuit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnectionsPerIP = 1
	_, addr := startServer(t, cfg, &memStore{}, nil)
	for i := 0; i < 200; i++ {
		c := dial(t, addr)
		c.expectPrefix("220 ")
		c.send("QUIT\r\n")
		c.expect("221 2.0.0 Bye\r\n")
		// No wait for the server's close: the next connection comes at once.
	}
}

// waitAdmitted dials until the server greets (a closed session's slot is
// released asynchronously), within a bounded number of tries.
func waitAdmitted(t *testing.T, addr string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		c := dial(t, addr)
		c.conn.SetReadDeadline(time.Now().Add(clientWait))
		line, err := c.r.ReadString('\n')
		c.conn.Close()
		if err == nil && strings.HasPrefix(line, "220 ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("server never admitted a new connection")
}

func TestTranscriptAndLog(t *testing.T) {
	dir := t.TempDir()
	var logBuf syncBuffer
	cfg := testConfig()
	cfg.TranscriptDir = dir
	cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	srv, addr := startServer(t, cfg, &memStore{}, nil)
	c := dial(t, addr)
	openTransaction(c)
	c.send("RCPT TO:<bad>\r\n")
	c.expectPrefix("501 ")
	c.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
	c.expectPrefix("502 ")
	c.send("DATA\r\n")
	c.expectPrefix("354 ")
	c.send("hello\r\n.\r\nQUIT\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1\r\n221 2.0.0 Bye\r\n")
	c.expectClosed()
	tr := onlyTranscript(t, srv, dir)
	for _, want := range []string{" S: 220 mx.test ESMTP Ferry\n", " C: MAIL FROM:<a@example.com>\n", " S: 250-PIPELINING\n",
		" C: AUTH PLAIN <redacted>\n", " *: <message content, ", " S: 250 2.0.0 Ok: queued as ID1\n", " C: QUIT\n"} {
		if !strings.Contains(string(tr), want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	if strings.Contains(string(tr), "AGFsaWNl") {
		t.Errorf("transcript holds AUTH data:\n%s", tr)
	}
	log := logBuf.String()
	for _, want := range []string{"msg=connect", "msg=reject", "stage=RCPT", "command=\"RCPT TO:<bad>\"", "msg=queued", "id=ID1",
		"rcpts=1", "body=7BIT", "msg=disconnect", "commands=\"ehlo=1 auth=0/1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/7\""} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// syncBuffer collects log output written and read from different goroutines.
type syncBuffer = testrelay.SyncBuffer

// onlyTranscript shuts srv down, so that every session has ended and
// written its transcript, and returns the one transcript file in dir.
func onlyTranscript(t *testing.T, srv *Server, dir string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(files) != 1 {
		t.Fatalf("transcripts %v, %v", files, err)
	}
	tr, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// fullStore is a memStore on a disk with room for messages up to room
// octets.
type fullStore struct {
	memStore
	room int64
}

func (f *fullStore) HasRoomFor(size int64) bool { return size <= f.room }

// TestSizeFullDiskAtMail: a SIZE= the store has no room for is refused at
// MAIL with 452 4.3.1 (RFC 1870 §6.1), before any content is sent; a size
// that fits, or none, is accepted.
func TestSizeFullDiskAtMail(t *testing.T) {
	store := &fullStore{room: 1000}
	_, addr := startServer(t, testConfig(), store, nil)
	runScript(t, addr, script(
		lines(greeting), ehloDefault,
		lines(
			"C: MAIL FROM:<a@example.org> SIZE=5000",
			"S: 452 4.3.1 Error: insufficient system storage",
			"C: MAIL FROM:<a@example.org> SIZE=500",
			"S: 250 2.1.0 Ok",
			"C: RSET",
			"S: 250 2.0.0 Ok",
			"C: MAIL FROM:<a@example.org>",
			"S: 250 2.1.0 Ok",
		)))
}
