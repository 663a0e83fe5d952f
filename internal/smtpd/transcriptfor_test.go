package smtpd

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestTranscriptFor checks the per-connection transcript decision: a
// session the hook declines has no file, a summarised one notes the content
// size, a full-content one records every content line after
// dot-unstuffing, and the hook sees the client's address.
func TestTranscriptFor(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	mode := "off" // "off", "summary", "full"
	var remotes []string
	cfg := testConfig()
	cfg.TranscriptDir = filepath.Join(dir, "not-used") // TranscriptFor wins
	cfg.TranscriptFor = func(remote net.Addr) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		remotes = append(remotes, remote.String())
		switch mode {
		case "summary":
			return dir, false
		case "full":
			return dir, true
		}
		return "", false
	}
	srv, addr := startServer(t, cfg, &memStore{}, nil)
	session := func(m string) {
		mu.Lock()
		mode = m
		mu.Unlock()
		c := dial(t, addr)
		c.expect("220 mx.test ESMTP Ferry\r\n")
		c.send("HELO client.test\r\n")
		c.expectPrefix("250 ")
		c.send("MAIL FROM:<a@example.com>\r\n")
		c.expectPrefix("250 ")
		c.send("RCPT TO:<b@example.org>\r\n")
		c.expectPrefix("250 ")
		c.send("DATA\r\n")
		c.expectPrefix("354 ")
		c.send("Subject: " + m + "\r\n\r\nfirst line\r\n..dot-stuffed\r\n.\r\n")
		c.expectPrefix("250 ")
		c.send("QUIT\r\n")
		c.expectPrefix("221 ")
		c.expectClosed()
	}
	session("off")
	session("summary")
	session("full")
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil { // every transcript is closed
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(files) != 2 {
		t.Fatalf("transcripts %v, %v; want two (summary and full)", files, err)
	}
	if _, err := os.Stat(cfg.TranscriptDir); err == nil {
		t.Error("TranscriptDir used although TranscriptFor is set")
	}
	var summary, full string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch s := string(b); {
		case strings.Contains(s, "octets stored>") && strings.Contains(s, "C: Subject: full\n"):
			full = s
		case strings.Contains(s, "octets stored>"):
			summary = s
		}
	}
	if summary == "" || strings.Contains(summary, "Subject:") || strings.Contains(summary, "first line") {
		t.Errorf("summarised transcript records content or lacks the note:\n%s", summary)
	}
	for _, want := range []string{"C: DATA\n", "C: Subject: full\n", "C: \n", "C: first line\n", "C: .dot-stuffed\n", "*: <message content, "} {
		if !strings.Contains(full, want) {
			t.Errorf("full transcript lacks %q:\n%s", want, full)
		}
	}
	if i, j := strings.Index(full, "C: first line"), strings.Index(full, "*: <message content"); i > j {
		t.Errorf("content note before the content:\n%s", full)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 3 || !strings.HasPrefix(remotes[0], "127.0.0.1:") {
		t.Errorf("TranscriptFor saw %v, want three loopback clients", remotes)
	}
}
