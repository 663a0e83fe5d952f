package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// transcriptFiles returns the transcript files in dir by name.
func transcriptFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}

// waitTranscripts waits until dir holds n transcripts that are complete
// (an inbound one ends with the QUIT reply, an outbound one too).
func waitTranscripts(t *testing.T, dir string, n int) map[string]string {
	t.Helper()
	var got map[string]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = transcriptFiles(t, dir)
		done := 0
		for _, s := range got {
			if strings.Contains(s, "S: 221 ") {
				done++
			}
		}
		if done >= n {
			return got
		}
	}
	t.Fatalf("%d complete transcripts in %s within 10s, want %d: %v", len(got), dir, n, got)
	return nil
}

// TestServeTranscripts switches transcripts on in the file (inbound by
// client network, outbound by next hop), then through the admin API (full
// content, another directory), and back to the file's on reload.
func TestServeTranscripts(t *testing.T) {
	dir := t.TempDir()
	spool, file := filepath.Join(dir, "spool"), filepath.Join(dir, "ferry.toml")
	fromFile, fromAPI := filepath.Join(dir, "tr-file"), filepath.Join(dir, "tr-api")
	hop := startSinkHop(t)
	writeFile(t, file, reloadConfig(spool, hop.Addr(), `
[transcripts]
dir = "`+fromFile+`"
clients = ["127.0.0.0/8"]
next_hops = ["127.0.0.1"]
`))
	rs := startServe(t, file)
	if r := rs.send(t, "x@company.example", "summarised"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("message: %q", r)
	}
	waitMessages(t, hop, 1)
	files := waitTranscripts(t, fromFile, 2)
	var inbound, outbound string
	for name, text := range files {
		if strings.HasPrefix(name, "out-") {
			outbound = text
		} else {
			inbound = text
		}
	}
	for _, want := range []string{"C: EHLO client.test", "C: DATA", "*: <message content, ", "octets stored>", "S: 250 2.0.0 Ok: queued as "} {
		if !strings.Contains(inbound, want) {
			t.Errorf("inbound transcript lacks %q:\n%s", want, inbound)
		}
	}
	for _, want := range []string{"*: connected to 127.0.0.1[127.0.0.1]:", "S: 220 sink.test", "C: EHLO relay.test", "octets sent>", "C: QUIT"} {
		if !strings.Contains(outbound, want) {
			t.Errorf("outbound transcript lacks %q:\n%s", want, outbound)
		}
	}
	if strings.Contains(inbound+outbound, "Subject: summarised") {
		t.Error("content recorded without full_content")
	}

	// At run time: full content, inbound only, in another directory.
	post := func(body string) (int, string) {
		resp, err := unixHTTP(rs.admin).Post("http://localhost/transcripts", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	if code, body := post(`{"dir": "` + fromAPI + `", "clients": ["127.0.0.1"], "full_content": true}`); code != 200 || !strings.Contains(body, `"127.0.0.1/32"`) {
		t.Fatalf("POST /transcripts: %d %s", code, body)
	}
	if code, body := post(`{"clients": ["10.1.2.3/8"]}`); code != 400 || !strings.Contains(body, `client network \"10.1.2.3/8\": host bits set; did you mean 10.0.0.0/8?`) {
		t.Errorf("POST with a bad network: %d %s", code, body)
	}
	if r := rs.send(t, "x@company.example", "in full"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("message: %q", r)
	}
	waitMessages(t, hop, 2)
	files = waitTranscripts(t, fromAPI, 1)
	for name, text := range files {
		if strings.HasPrefix(name, "out-") || !strings.Contains(text, "C: Subject: in full\n") && !strings.Contains(text, "C: Subject: in full") {
			t.Errorf("transcript %s: want the inbound session with its content:\n%s", name, text)
		}
	}
	if n := len(transcriptFiles(t, fromFile)); n != 2 {
		t.Errorf("%d transcripts in the file's directory, want still 2", n)
	}

	// A reload puts the file's rules back.
	if err := reloadNow(t, rs.reloads); err != nil {
		t.Fatal(err)
	}
	resp, err := unixHTTP(rs.admin).Get("http://localhost/transcripts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	if got := string(buf[:n]); !strings.Contains(got, fromFile) || !strings.Contains(got, `"full_content": false`) {
		t.Errorf("GET /transcripts after reload: %s", got)
	}
}

// unixHTTP returns an HTTP client that reaches the admin API on the Unix
// socket sock (the default: admin.sock in the spool).
func unixHTTP(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}
