package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSinkCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- serveSink(ctx, []string{"--listen", "127.0.0.1:0", "--keywords", "SIZE,PIPELINING,HELP",
			"--size", "10240000", "--strict-7bit", "--out", dir, "--hostname", "domino.test",
			"--reply", "RCPT:*@bad.example=550 5.1.1 no such user"}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v (stderr %s)", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "ferry sink: listening on "))

	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	step := func(send, want string) {
		t.Helper()
		if send != "" {
			io.WriteString(c, send)
		}
		got := make([]byte, len(want))
		if n, err := io.ReadFull(r, got); err != nil || string(got) != want {
			t.Fatalf("after %q: got %q (%v), want %q", send, got[:n], err, want)
		}
	}
	step("", "220 domino.test ESMTP Ferry\r\n")
	step("EHLO relay.test\r\n", "250-domino.test\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250 HELP\r\n")
	step("MAIL FROM:<a@example.com> BODY=8BITMIME\r\n", "555 Unsupported option: BODY\r\n")
	step("MAIL FROM:<a@example.com>\r\n", "250 Ok\r\n")
	step("RCPT TO:<x@bad.example>\r\n", "550 no such user\r\n")
	step("RCPT TO:<b@example.org>\r\n", "250 Ok\r\n")
	step("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	step("caf\xc3\xa9\r\n.\r\n", "554 8-bit octet at offset 3, but BODY=8BITMIME was not given\r\n")
	step("MAIL FROM:<a@example.com>\r\n", "250 Ok\r\n")
	step("RCPT TO:<b@example.org>\r\n", "250 Ok\r\n")
	step("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	step("Subject: x\r\n\r\n..hi\r\n.\r\n", "250 Ok: queued as ")
	id, _ := r.ReadString('\n')
	id = strings.TrimSpace(id)
	step("QUIT\r\n", "221 Bye\r\n")

	eml, err := os.ReadFile(filepath.Join(dir, id+".eml"))
	if err != nil || string(eml) != "Subject: x\r\n\r\n.hi\r\n" {
		t.Fatalf("capture %q: %v", eml, err)
	}
	if js, err := os.ReadFile(filepath.Join(dir, id+".json")); err != nil || !bytes.Contains(js, []byte(`"mail_line": "MAIL FROM:<a@example.com>"`)) {
		t.Fatalf("sidecar %s: %v", js, err)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(waitLimit):
		t.Fatal("ferry sink did not stop")
	}
}

func TestSinkCommandFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-h"}, 0, "STAGE[#N]:PATTERN=CODE"},
		{[]string{"--reply", "HELO:*=550 x"}, 2, "stage"},
		{[]string{"--bare-newline", "maybe"}, 2, "want normalize or reject"},
		{[]string{"--max-recipients", "10", "--listen", "127.0.0.1:0"}, 1, "at least 100"},
		{[]string{"--keywords", "BINARYMIME", "--listen", "127.0.0.1:0"}, 1, "requires CHUNKING"},
		{[]string{"extra"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := serveSink(context.Background(), tt.args, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.err) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.err)
		}
	}
}

// TestSinkErrorPrefixOnce: a sink that cannot listen says so once, without
// "ferry sink: sink:".
func TestSinkErrorPrefixOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"sink", "--listen", ln.Addr().String(), "--out", t.TempDir()}, &out, &errb); code == 0 {
		t.Fatalf("sink on a busy port: exit 0")
	}
	if s := errb.String(); strings.Contains(s, "sink: sink:") || !strings.HasPrefix(s, "ferry sink: ") {
		t.Errorf("stderr %q, want one \"ferry sink: \" prefix", s)
	}
}
