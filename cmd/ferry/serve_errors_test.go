package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
)

// TestServeErrorPrintedOnce: a start-up failure (the spool locked by
// another server) is told once on stderr, with the queue's prefix once.
func TestServeErrorPrintedOnce(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	q, err := queue.Open(queue.DefaultConfig(spool))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--spool", spool, "--listen", "127.0.0.1:0", "--admin", "off"}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
	text := errb.String()
	if n := strings.Count(text, "in use by another process"); n != 1 {
		t.Errorf("the error is told %d times, want once:\n%s", n, text)
	}
	if strings.Count(text, "queue:") > 1 || strings.Contains(text, "opening queue") {
		t.Errorf("doubled prefix:\n%s", text)
	}
}
