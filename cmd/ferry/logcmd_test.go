package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/smtp"
)

// writeMailLog writes two interleaved sessions' events with the real
// maillog functions in format ("text" or "json") and returns the file.
func writeMailLog(t *testing.T, format string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mail.log")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h slog.Handler = slog.NewTextHandler(f, nil)
	if format == "json" {
		h = slog.NewJSONHandler(f, nil)
	}
	l := slog.New(h)
	from := smtp.Path{LocalPart: "alice", Domain: "x.test"}
	maillog.Connect(l, "s1", "192.0.2.1:5000")
	maillog.Connect(l, "s2", "192.0.2.2:5000")
	maillog.Reject(l, "s1", "RCPT", smtp.NewReply(550, "5.1.1", "no"))
	maillog.Queued(l, "s1", "0SC8AAAAAAAA1", from, 1, 400, smtp.Body8BitMIME)
	maillog.Queued(l, "s2", "0SC8AAAAAAAB2", from, 1, 400, smtp.Body7Bit)
	maillog.Disconnect(l, "s2", "192.0.2.2:5000", nil)
	maillog.Disconnect(l, "s1", "192.0.2.1:5000", nil)
	l.Info("0SC8AAAAAAAA1: to=<bob@a.test>, relay=mx[192.0.2.9]:25, delay=0.20, status=sent (250 ok)",
		"event", "sent", "id", "0SC8AAAAAAAA1", "to", "bob@a.test")
	l.Info("removed", "id", "0SC8AAAAAAAA1")
	l.Info("removed", "id", "0SC8AAAAAAAB2")
	return p
}

func TestLogCommand(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			file := writeMailLog(t, format)
			code, out, errOut := ferry("log", "--file", file, "0SC8AAAAAAAA1")
			if code != 0 {
				t.Fatalf("%d %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			wantOrder := []string{"connect", "reject", "queued", "disconnect", "status=sent", "removed"}
			if len(lines) != len(wantOrder) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(wantOrder), out)
			}
			for i, w := range wantOrder {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to hold %q", i, lines[i], w)
				}
			}
			if strings.Contains(out, "s2") || strings.Contains(out, "AAB2") {
				t.Errorf("another session's lines leaked in:\n%s", out)
			}
			if code, _, errOut := ferry("log", "--file", file, "0SC8ZZZZ"); code != 1 || !strings.Contains(errOut, "no line of") {
				t.Errorf("unknown ID: %d %q", code, errOut)
			}
		})
	}
	if code, _, errOut := ferry("log", "0SC8AAAAAAAA1"); code != 2 || !strings.Contains(errOut, "give --file") {
		t.Errorf("no file: %d %q", code, errOut)
	}
	if code, _, _ := ferry("log", "--file", filepath.Join(t.TempDir(), "none"), "X"); code != 1 {
		t.Errorf("missing file: %d", code)
	}
}

func TestSessionsIn(t *testing.T) {
	for in, want := range map[string]string{
		`time=x level=INFO msg=connect session=ab1.2 client=1`: "ab1.2",
		`{"msg":"queued","session":"s-9","id":"Q"}`:            "s-9",
		`msg=x xsession=zz`:       "",
		`msg=x session= client=1`: "",
	} {
		if got := strings.Join(sessionsIn([]byte(in)), ","); got != want {
			t.Errorf("sessionsIn(%q) = %q, want %q", in, got, want)
		}
	}
}
