package admin

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// serveGuarded serves the admin API behind Protect on a real loopback
// listener and returns its address.
func serveGuarded(t *testing.T, opts Options, token string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := &http.Server{Handler: Protect(New(opts), Guard{Addr: addr, Token: token}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return addr
}

// TestGuard checks the TCP admin listener's defences: the bearer token,
// the Host check against DNS rebinding, the Origin check against other web
// pages, and JSON-only state changes.
func TestGuard(t *testing.T) {
	q, spool := openQueue(t, discardLogger(), nil)
	id := put(t, q, plainBody, "alice@x.test", "bob@a.test")
	const token = "s3cret-token-0123456789"
	addr := serveGuarded(t, Options{Queue: q, Logger: discardLogger(), Spool: spool}, token)
	base := "http://" + addr
	_, port, _ := net.SplitHostPort(addr)
	auth := map[string]string{"Authorization": "Bearer " + token}
	withAuth := func(kv ...string) map[string]string {
		h := map[string]string{"Authorization": "Bearer " + token}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	for _, tc := range []struct {
		name         string
		method, path string
		host         string
		header       map[string]string
		body         string
		want         int
		wantText     string
	}{
		{"no token", "GET", "/queue/" + id + "?body=1", "", nil, "", 401, "bearer token"},
		{"wrong token", "GET", "/queue", "", map[string]string{"Authorization": "Bearer nope"}, "", 401, "bearer token"},
		{"token", "GET", "/queue/" + id + "?body=1", "", auth, "", 200, id},
		{"rebinding host", "GET", "/queue", "rebind.attacker.example:" + port, auth, "", 403, "is not this admin listener's address"},
		{"other port", "GET", "/queue", "127.0.0.1:1", auth, "", 403, "Host"},
		{"localhost", "GET", "/queue", "localhost:" + port, auth, "", 200, id},
		{"foreign origin", "POST", "/queue/" + id + "/hold", "", withAuth("Origin", "http://evil.example", "Content-Type", "application/json"), "{}", 403, "origin"},
		{"cross-site fetch", "GET", "/queue", "", withAuth("Sec-Fetch-Site", "cross-site"), "", 403, "another site"},
		{"form post", "POST", "/queue/" + id + "/hold", "", withAuth("Content-Type", "application/x-www-form-urlencoded"), "a=b", 415, "JSON body"},
		{"no body", "POST", "/queue/" + id + "/hold", "", withAuth("Content-Type", "application/json"), "", 400, "JSON object"},
		{"text/plain", "POST", "/queue/" + id + "/hold", "", withAuth("Content-Type", "text/plain"), "{}", 415, "JSON body"},
		{"one-character prefix", "POST", "/queue/" + id[:1] + "/hold", "", withAuth("Content-Type", "application/json"), "{}", 400, "too short"},
		{"retry in the query string", "POST", "/queue/retry?all=1", "", withAuth("Content-Type", "application/json"), "{}", 400, `{\"all\": true}`},
		{"hold", "POST", "/queue/" + id[:MinChangePrefix] + "/hold", "", withAuth("Content-Type", "application/json", "Origin", base), "{}", 200, id},
	} {
		header := map[string]string{}
		for k, v := range tc.header {
			header[k] = v
		}
		if tc.host != "" {
			header["Host"] = tc.host
		}
		code, body := testrelay.HTTPRequest(t, nil, tc.method, base+tc.path, header, tc.body)
		if code != tc.want || !strings.Contains(body, tc.wantText) {
			t.Errorf("%s: %s %s = %d %s, want %d with %q", tc.name, tc.method, tc.path, code, body, tc.want, tc.wantText)
		}
	}
	if info, err := q.Show(id); err != nil || !info.Held {
		t.Errorf("after the one accepted hold: %+v, %v", info, err)
	}

	// The client sends the token and JSON bodies.
	cl := NewClient(addr).WithToken(token)
	if _, err := cl.Act(testCtx(t), id, "release"); err != nil {
		t.Fatal(err)
	}
	if n, err := cl.Retry(testCtx(t), ""); err != nil || n != 1 {
		t.Errorf("Retry all = %d, %v", n, err)
	}
	// A client expecting another spool refuses the answer.
	_, err := NewClient(addr).WithToken(token).ExpectSpool("/elsewhere").List(testCtx(t), Query{})
	var ws *WrongServerError
	if !errors.As(err, &ws) || !strings.Contains(err.Error(), spool) {
		t.Errorf("List with the wrong spool = %v", err)
	}
}

// TestGuardUnixSocket checks that the socket answers only Host localhost
// (what the client and "curl --unix-socket S http://localhost/" send).
func TestGuardUnixSocket(t *testing.T) {
	q, spool := openQueue(t, discardLogger(), nil)
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Protect(New(Options{Queue: q, Spool: spool}), Guard{Addr: sock}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if _, err := NewClient(sock).ExpectSpool(spool).List(testCtx(t), Query{}); err != nil {
		t.Errorf("List over the socket: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: NewClient(sock).hc.Transport.(*http.Transport).DialContext}}
	resp, err := hc.Get("http://attacker.example/queue")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("Host attacker.example over the socket: %d, want 403", resp.StatusCode)
	}
}

// TestLoadToken checks the token file rules: it exists, belongs to the
// service user, is closed to group and others, and holds a long token.
func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "0123456789abcdef0123\n", 0o600)
	if tok, err := LoadToken(good); err != nil || tok != "0123456789abcdef0123" {
		t.Errorf("LoadToken(good) = %q, %v", tok, err)
	}
	for _, tc := range []struct{ path, want string }{
		{"", "needs admin.token_file"},
		{filepath.Join(dir, "missing"), "no such file"},
		{write("world", "0123456789abcdef0123\n", 0o644), "mode 0644 lets its group or others read it"},
		{write("group", "0123456789abcdef0123\n", 0o640), "mode 0640"},
		{write("short", "abc\n", 0o600), "want at least 16"},
		{write("empty", "\n", 0o600), "is empty"},
	} {
		if _, err := LoadToken(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadToken(%s) = %v, want an error with %q", tc.path, err, tc.want)
		}
	}
}

// TestListLastReply checks that the listing carries each attempted
// recipient's last reply, as mailq shows it.
func TestListLastReply(t *testing.T) {
	q, spool := openQueue(t, discardLogger(), nil)
	put(t, q, plainBody, "alice@x.test", "bob@a.test")
	ctx := testCtx(t)
	deferLeased(t, q, smtp.NewReply(451, "4.3.0", "mailbox busy"))
	cl, _ := startAdmin(t, Options{Queue: q, Spool: spool})
	list, err := cl.List(ctx, Query{})
	if err != nil || len(list) != 1 || len(list[0].Rcpts) != 1 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if r := list[0].Rcpts[0]; !strings.Contains(r.LastReply, "451 4.3.0 mailbox busy") || r.RemoteMTA != "mx[192.0.2.1]:25" || r.History != nil {
		t.Errorf("listed recipient = %+v, want the last reply and no history", r)
	}
}

// TestOpenSpool checks the offline mode: with no server on the spool the
// client reads and changes the queue directly, under the spool's lock;
// retry and bounce, which need a server, are refused; and a spool in use
// cannot be opened.
func TestOpenSpool(t *testing.T) {
	dir := t.TempDir()
	cfg := queue.DefaultConfig(dir)
	cfg.SegmentSize = 256 << 10
	q, err := queue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := put(t, q, plainBody, "alice@x.test", "bob@a.test")
	if _, _, err := OpenSpool(cfg); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("OpenSpool of a spool in use = %v", err)
	}
	q.Close()

	cl, closeQ, err := OpenSpool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if list, err := cl.List(ctx, Query{}); err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("offline List = %+v, %v", list, err)
	}
	if !strings.Contains(cl.Addr(), dir) {
		t.Errorf("offline client names %q, not the spool", cl.Addr())
	}
	if _, err := cl.Act(ctx, id, "hold"); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Act(ctx, id, "bounce")
	wantStatus(t, err, http.StatusConflict)
	_, err = cl.Retry(ctx, "")
	wantStatus(t, err, http.StatusConflict)
	if err := closeQ(); err != nil {
		t.Fatal(err)
	}
	q, err = queue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if info, err := q.Show(id); err != nil || !info.Held {
		t.Errorf("after an offline hold: %+v, %v", info, err)
	}
}

// TestMetricsHandler checks the metrics listener's handler: /metrics,
// /healthz and /readyz without a token and without naming the spool,
// nothing else.
func TestMetricsHandler(t *testing.T) {
	q, spool := openQueue(t, discardLogger(), nil)
	srv := httptest.NewServer(NewMetricsHandler(New(Options{Queue: q, Spool: spool, Metrics: NewMetrics()})))
	t.Cleanup(srv.Close)
	for path, want := range map[string]int{"/metrics": 200, "/healthz": 200, "/readyz": 200, "/queue": 404, "/hops": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get(SpoolHeader) != "" {
			t.Errorf("GET %s = %d (%s: %q), want %d and no spool", path, resp.StatusCode, SpoolHeader, resp.Header.Get(SpoolHeader), want)
		}
	}
}
