package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/admin"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// adminFixture is a queue in a temporary spool served by the admin API on
// loopback, as "ferry serve" runs it.
type adminFixture struct {
	q     *queue.Queue
	hops  *deliver.HopCache
	spool string
	addr  string
	// token is the file with the bearer token the admin API requires.
	token string
	logs  *syncBuffer
}

// fixtureToken is the admin fixture's bearer token.
const fixtureToken = "fixture-token-0123456789"

func newAdminFixture(t *testing.T, routes ...route.Route) adminFixture {
	t.Helper()
	f := adminFixture{spool: t.TempDir(), logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(f.logs, nil))
	cfg := queue.DefaultConfig(f.spool)
	cfg.Logger = logger
	cfg.SegmentSize = 256 << 10
	q, err := queue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	f.q = q
	f.hops = deliver.NewHopCache(logger)
	table, err := route.NewTable(route.Options{}, routes...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	f.addr = srv.Listener.Addr().String()
	srv.Config.Handler = admin.Protect(admin.New(admin.Options{Queue: q, Hops: f.hops, Routes: table, Logger: logger, Spool: f.spool}),
		admin.Guard{Addr: f.addr, Token: fixtureToken})
	srv.Start()
	t.Cleanup(srv.Close)
	f.token = filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(f.token, []byte(fixtureToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// put queues a message from sender to rcpts ("user@domain").
func (f adminFixture) put(t *testing.T, body, sender string, rcpts ...string) string {
	t.Helper()
	parse := func(s string) smtp.Path {
		l, d, _ := strings.Cut(s, "@")
		return smtp.Path{LocalPart: l, Domain: d}
	}
	env := &smtp.Envelope{From: parse(sender), Body: smtp.Body8BitMIME,
		Client: smtp.ClientInfo{Addr: "192.0.2.7:4711", Helo: "client.example", Protocol: "ESMTP"}}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, smtp.Recipient{Addr: parse(r)})
	}
	id, err := f.q.Put(context.Background(), env, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ferry runs the command line and returns its exit status and outputs.
func ferry(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

const cliPlain = "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n\r\nhello\r\n"

const cliEightBit = "From: a@x.test\r\nTo: b@y.test\r\nSubject: report\r\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; d=x.test; s=s1; h=from:to:subject; bh=AAAA; b=BBBB\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
	"--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n" +
	"--b2\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln: the weather is fine and everyone here is well.\r\n" +
	"--b2\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>Grüße aus Köln: the weather is fine and everyone here is well.</p>\r\n" +
	"--b2--\r\n" +
	"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain part\r\n" +
	"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n" +
	"--b1--\r\n"

// TestQueueCommands runs every "ferry queue" command against a server and
// checks the effect in the queue.
func TestQueueCommands(t *testing.T) {
	f := newAdminFixture(t, route.Route{Pattern: "a.test", Hops: []route.NextHop{{Host: "127.0.0.1", Port: 2526, NoMX: true}}})
	f.hops.Record(deliver.HopInfo{Hop: "127.0.0.1:2526", ESMTP: true, Keywords: smtp.Extensions{"SIZE": "1000000", "PIPELINING": ""}, Seen: time.Now().Add(-3 * time.Minute)})
	a := f.put(t, cliEightBit, "alice@x.test", "bob@a.test")
	b := f.put(t, cliPlain, "carol@x.test", "dave@b.test", "erin@b.test")

	code, out, errOut := ferry("queue", "--admin", f.addr, "--token-file", f.token, "list")
	if code != 0 {
		t.Fatalf("list: %d %s", code, errOut)
	}
	for _, want := range []string{"-Queue ID-", a, b, "alice@x.test", "bob@a.test", "(pending)", "in 2 messages."} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "list", "--hop", "b.test", "--json")
	var listed []admin.Summary
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].ID != b {
		t.Errorf("list --hop --json = %d %s", code, out)
	}

	code, out, errOut = ferry("queue", "--admin", f.addr, "--token-file", f.token, "show", a, "--body")
	if code != 0 {
		t.Fatalf("show: %d %s", code, errOut)
	}
	for _, want := range []string{"Message:   " + a, "Sender:    <alice@x.test>", "Body:      8BITMIME", "Client:    192.0.2.7:4711 (client.example) with ESMTP",
		"<bob@a.test>  next-hop key a.test: pending, 0 attempts", "Transfer plan now (from the hop-capability cache):",
		"a.test via route a.test=[127.0.0.1]:2526", "next hop 127.0.0.1:2526 (seen 3 min ago): body=8BITMIME→7BIT converted, DATA",
		"Content:", "Grüße aus Köln"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "hold", a[:len(a)-1])
	if code != 0 || out != a+": held\n" {
		t.Errorf("hold = %d %q", code, out)
	}
	if info, _ := f.q.Show(a); !info.Held {
		t.Error("not held")
	}
	if _, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "list", "--state", "held"); !strings.Contains(out, a+"!") || strings.Contains(out, b) {
		t.Errorf("held list:\n%s", out)
	}
	if code, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "release", a); code != 0 || out != a+": released\n" {
		t.Errorf("release = %d %q", code, out)
	}
	if info, _ := f.q.Show(a); info.Held {
		t.Error("still held")
	}
	if code, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "retry", "--hop", "b.test"); code != 0 || out != "1 message due for delivery now\n" {
		t.Errorf("retry --hop = %d %q", code, out)
	}
	if code, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "retry", "--all"); code != 0 || out != "2 messages due for delivery now\n" {
		t.Errorf("retry --all = %d %q", code, out)
	}
	if code, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "retry", a, b); code != 0 || strings.Count(out, "due for delivery now") != 2 {
		t.Errorf("retry IDs = %d %q", code, out)
	}
	if code, _, errOut = ferry("queue", "--admin", f.addr, "--token-file", f.token, "retry", a, "--all"); code != 2 {
		t.Errorf("retry with IDs and --all = %d %s", code, errOut)
	}
	if code, out, errOut = ferry("queue", "--admin", f.addr, "--token-file", f.token, "delete", b, "NOSUCHID"); code != 1 || out != b+": deleted\n" || !strings.Contains(errOut, "NOSUCHID: no such message") {
		t.Errorf("delete = %d %q %q", code, out, errOut)
	}
	if _, err := f.q.Show(b); err == nil {
		t.Error("deleted message still queued")
	}
	if code, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "bounce", a); code != 0 || !strings.HasPrefix(out, a+": bounced") {
		t.Errorf("bounce = %d %q", code, out)
	}
	if code, out, _ = ferry("queue", "--admin", f.addr, "--token-file", f.token, "list"); code != 0 || out != "Queue is empty\n" {
		t.Errorf("final list = %d %q", code, out)
	}
	for _, want := range []string{"action=hold", "action=release", "msg=deleted id=" + b, "action=bounce", "msg=removed id=" + a} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestQueueFindsServer finds the server through the spool's address file,
// never another server, works on the spool itself when no server runs,
// and says clearly which queue answered.
func TestQueueFindsServer(t *testing.T) {
	f := newAdminFixture(t)
	id := f.put(t, cliPlain, "alice@x.test", "bob@a.test")
	if err := admin.WritePublished(f.spool, admin.Published{Addr: f.addr, TokenFile: f.token}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := ferry("queue", "--spool", f.spool, "list")
	if code != 0 || !strings.Contains(out, id) || !strings.HasPrefix(errOut, "ferry: the server at "+f.addr+" answers for the spool "+f.spool+"\n") {
		t.Errorf("--spool: %d %s %s", code, out, errOut)
	}
	// The target flags work after the command too.
	if code, out, errOut := ferry("queue", "list", "--spool", f.spool); code != 0 || !strings.Contains(out, id) {
		t.Errorf("list --spool: %d %s %s", code, out, errOut)
	}
	// A configuration naming the spool.
	dir := t.TempDir()
	conf := filepath.Join(dir, "ferry.toml")
	writeFile(t, conf, "[queue]\nspool = \""+f.spool+"\"\n")
	if code, out, errOut := ferry("queue", "--config", conf, "list"); code != 0 || !strings.Contains(out, id) {
		t.Errorf("--config: %d %s %s", code, out, errOut)
	}
	// A configuration naming another spool, whose server is stopped, and
	// the running server's admin address: the other spool's queue, read
	// directly, never the running server's.
	other := filepath.Join(dir, "spool")
	os.Mkdir(other, 0o700)
	writeFile(t, conf, "[queue]\nspool = \""+other+"\"\n\n[admin]\naddress = \""+f.addr+"\"\ntoken_file = \""+f.token+"\"\n")
	code, out, errOut = ferry("queue", "--config", conf, "list")
	if code != 0 || out != "Queue is empty\n" || !strings.Contains(errOut, "no server runs on the spool "+other+": working on it directly") {
		t.Errorf("stopped server's spool: %d %q %q", code, out, errOut)
	}
	// --admin with another --spool: the server's spool differs, refused.
	code, _, errOut = ferry("queue", "--admin", f.addr, "--token-file", f.token, "--spool", other, "delete", id)
	if code != 1 || !strings.Contains(errOut, "serves the spool "+f.spool+", not "+other) {
		t.Errorf("wrong server: %d %q", code, errOut)
	}
	if _, err := f.q.Show(id); err != nil {
		t.Errorf("message deleted through the wrong target: %v", err)
	}
	// Nobody listening at --admin: that address alone, named.
	dead := testrelay.RefusedAddr(t)
	code, _, errOut = ferry("queue", "--admin", dead, "--token-file", f.token, "list")
	if code != 1 || errOut != "ferry queue: no ferry serve running at "+dead+" (is admin.address right?)\n" {
		t.Errorf("no server: %d %q", code, errOut)
	}
	code, _, errOut = ferry("queue", "--admin", dead, "--token-file", f.token, "hold", "AAAAAAAAAA", "BBBBBBBBBB")
	if code != 1 || strings.Count(errOut, "no ferry serve running") != 1 {
		t.Errorf("hold with no server: %d %q", code, errOut)
	}
	code, _, errOut = ferry("queue", "--admin", f.addr, "list")
	if code != 1 || !strings.Contains(errOut, "needs a bearer token") {
		t.Errorf("TCP without a token: %d %q", code, errOut)
	}
	// A spool in use whose server published no address (admin off).
	admin.RemoveAddrFile(f.spool)
	writeFile(t, conf, "[queue]\nspool = \""+f.spool+"\"\n\n[admin]\naddress = \"off\"\n")
	if code, _, errOut := ferry("queue", "--config", conf, "list"); code != 1 || !strings.Contains(errOut, "is in use, but no server recorded an admin address there") {
		t.Errorf("admin off: %d %q", code, errOut)
	}
	// No spool there: an error, and none is created.
	missing := filepath.Join(dir, "nospool")
	if code, _, errOut := ferry("queue", "--spool", missing, "delete", "--all"); code != 1 || !strings.Contains(errOut, "no spool directory "+missing) {
		t.Errorf("missing spool: %d %q", code, errOut)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("ferry queue created %s: %v", missing, err)
	}
	if code, _, _ := ferry("queue", "--admin", f.addr, "frobnicate"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
	if code, _, errOut := ferry("queue", "--admin", f.addr, "show"); code != 2 || !strings.HasPrefix(errOut, "ferry queue show: missing argument") {
		t.Errorf("show without ID: %d %q", code, errOut)
	}
}
