package maillog

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

func TestCommandCounts(t *testing.T) {
	tests := []struct {
		name string
		cmds []struct {
			verb string
			ok   bool
		}
		want string
	}{
		{"none", nil, "commands=0"},
		{"typical", []struct {
			verb string
			ok   bool
		}{{"EHLO", true}, {"MAIL", true}, {"RCPT", true}, {"RCPT", false}, {"DATA", true}, {"QUIT", true}},
			"ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6"},
		{"unknown", []struct {
			verb string
			ok   bool
		}{{"FROB", false}, {"helo", true}, {"", false}},
			"helo=1 unknown=0/2 commands=1/3"},
	}
	for _, tt := range tests {
		var c CommandCounts
		for _, cmd := range tt.cmds {
			c.Record(cmd.verb, cmd.ok)
		}
		if got := c.String(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	var nilCounts *CommandCounts
	if got := nilCounts.String(); got != "commands=0" {
		t.Errorf("nil counts: %q", got)
	}
}

func TestRedactCommand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"AUTH PLAIN AGZvbwBiYXI=", "AUTH PLAIN <redacted>"},
		{"auth login dXNlcg==", "auth login <redacted>"},
		{"AUTH LOGIN", "AUTH LOGIN"},
		{"AUTHX foo bar", "AUTHX foo bar"},
		{"MAIL FROM:<a@b> AUTH=<>", "MAIL FROM:<a@b> AUTH=<>"},
	}
	for _, tt := range tests {
		if got := RedactCommand(tt.in); got != tt.want {
			t.Errorf("RedactCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTranscript(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	at := time.Date(2026, 11, 28, 10, 0, 0, 123e6, time.UTC)
	tr := NewTranscript(w, func() time.Time { return at })
	tr.Server(smtp.NewReply(220, "", "mx.test ESMTP"))
	tr.Client("EHLO client.test")
	tr.Server(smtp.NewReply(250, "", "mx.test", "PIPELINING", "SIZE 100"))
	tr.Client("AUTH PLAIN AGZvbwBiYXI=")
	tr.ClientSecret()
	tr.Server(smtp.NewReply(535, "5.7.8", "Authentication failed"))
	tr.Note("<message content, 10 octets stored>")
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	want := `2026-11-28T10:00:00.123Z S: 220 mx.test ESMTP
2026-11-28T10:00:00.123Z C: EHLO client.test
2026-11-28T10:00:00.123Z S: 250-mx.test
2026-11-28T10:00:00.123Z S: 250-PIPELINING
2026-11-28T10:00:00.123Z S: 250 SIZE 100
2026-11-28T10:00:00.123Z C: AUTH PLAIN <redacted>
2026-11-28T10:00:00.123Z C: <redacted>
2026-11-28T10:00:00.123Z S: 535 5.7.8 Authentication failed
2026-11-28T10:00:00.123Z *: <message content, 10 octets stored>
`
	if buf.String() != want {
		t.Fatalf("transcript:\n%s\nwant:\n%s", buf.String(), want)
	}
	var none *Transcript
	none.Client("x")
	none.Server(smtp.NewReply(250, "", "x"))
	if err := none.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenTranscript(t *testing.T) {
	dir := t.TempDir()
	tr, err := OpenTranscript(dir, "s1")
	if err != nil {
		t.Fatal(err)
	}
	tr.Client("NOOP")
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "s1.log"))
	if err != nil || !strings.HasSuffix(string(b), " C: NOOP\n") {
		t.Fatalf("file %q, %v", b, err)
	}
	if _, err := OpenTranscript(dir, "s1"); err == nil {
		t.Fatal("OpenTranscript overwrote an existing transcript")
	}
}

func TestEvents(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	Connect(l, "s1", "192.0.2.1:4321")
	Queued(l, "s1", "Q1", smtp.Path{LocalPart: "a", Domain: "example.com"}, 2, 1234, "")
	Reject(l, "s1", "RCPT", smtp.NewReply(550, "5.1.1", "no such user"), slog.String("to", "<x@example.org>"))
	var c CommandCounts
	c.Record("EHLO", true)
	c.Record("QUIT", true)
	Disconnect(l, "s1", "192.0.2.1:4321", &c)
	Queued(nil, "s1", "Q1", smtp.Path{}, 0, 0, "") // a nil logger discards
	want := `level=INFO msg=connect session=s1 client=192.0.2.1:4321
level=INFO msg=queued session=s1 id=Q1 from=<a@example.com> rcpts=2 size=1234 body=7BIT
level=INFO msg=reject session=s1 stage=RCPT reply="550 5.1.1 no such user" to=<x@example.org>
level=INFO msg=disconnect session=s1 client=192.0.2.1:4321 commands="ehlo=1 quit=1 commands=2"
`
	if buf.String() != want {
		t.Fatalf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
	if got := FormatPath(smtp.Path{}); got != "<>" {
		t.Fatalf("FormatPath(null) = %q", got)
	}
}
