package admin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// scrape fetches /metrics and returns each sample by its series as
// printed ("name{a="x",b="y"}").
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// series formats a series name with labels given as "k=v" pairs, sorted as
// the exposition format prints them.
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	slices.Sort(labels)
	var parts []string
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		parts = append(parts, k+"="+strconv.Quote(v))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// smtpSession sends one message to an smtpd listener with a bad RCPT in
// between, and returns the queue ID from the 250 reply.
func smtpSession(t *testing.T, addr, from, to, body string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	read := func() string {
		var last string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading reply: %v", err)
			}
			last = line
			if len(line) < 4 || line[3] != '-' {
				return strings.TrimRight(last, "\r\n")
			}
		}
	}
	send := func(cmd string) string {
		fmt.Fprintf(c, "%s\r\n", cmd)
		return read()
	}
	read()
	send("EHLO client.test")
	send("MAIL FROM:<" + from + "> BODY=8BITMIME")
	send("RCPT TO:<" + to + ">")
	if rep := send("RCPT TO:<broken"); !strings.HasPrefix(rep, "5") {
		t.Fatalf("bad RCPT answered %q", rep)
	}
	send("DATA")
	rep := send(body + ".")
	send("QUIT")
	_, id, ok := strings.Cut(rep, "queued as ")
	if !strings.HasPrefix(rep, "250") || !ok {
		t.Fatalf("end of data answered %q", rep)
	}
	return strings.TrimSpace(id)
}

// TestMetricsScriptedRun drives a real smtpd, queue and delivery agent
// (with a sink playing a hop without 8BITMIME, scripted to defer and
// refuse some recipients) with the mail log going through the metrics
// handler, then scrapes /metrics over HTTP and checks the counters.
func TestMetricsScriptedRun(t *testing.T) {
	ctx := testCtx(t)
	m := NewMetrics()
	var logs logBuffer
	// The text log is at warn level: the metrics must count anyway.
	logger := slog.New(m.Handler(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	q, spool := openQueue(t, logger, nil)

	// Inbound: a real smtpd on loopback.
	cfg := smtpd.DefaultConfig()
	cfg.Hostname = "relay.test"
	cfg.Logger = logger
	srv := smtpd.New(cfg, q, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})

	// Outbound: a sink without 8BITMIME, and a hop nobody listens on.
	s, err := sink.Start(sink.Options{Keywords: []string{"SIZE 10240000", "PIPELINING", "ENHANCEDSTATUSCODES"}, Strict7Bit: true,
		Rules: []sink.Rule{mustRule(t, "RCPT:*@defer.test=451 4.3.0 try later"), mustRule(t, "RCPT:*@bad.test=550 5.1.1 no such user")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	deadPort := testrelay.RefusedPort(t)
	sinkPort := int(netip.MustParseAddrPort(s.Addr()).Port())
	table, err := route.NewTable(route.Options{},
		route.Route{Pattern: "down.test", Hops: []route.NextHop{{Host: "127.0.0.1", Port: deadPort, NoMX: true}}},
		route.Route{Pattern: "*", Hops: []route.NextHop{{Host: "127.0.0.1", Port: sinkPort, NoMX: true}}})
	if err != nil {
		t.Fatal(err)
	}
	hops := deliver.NewHopCache(logger)
	agent, err := deliver.NewAgent(q, deliver.Config{Routes: table, HeloName: "relay.test", Converter: deliver.Downgrader{},
		Logger: logger, Hops: hops, Timeouts: deliver.Timeouts{Connect: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()

	ok := smtpSession(t, ln.Addr().String(), "alice@x.test", "ok@good.test", eightBitBody)
	smtpSession(t, ln.Addr().String(), "alice@x.test", "later@defer.test", plainBody)
	smtpSession(t, ln.Addr().String(), "alice@x.test", "nobody@bad.test", plainBody)
	downID := smtpSession(t, ln.Addr().String(), "alice@x.test", "x@down.test", plainBody)

	for range 4 {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := q.Lease(lctx)
		cancel()
		if err != nil || l == nil {
			t.Fatalf("Lease: %v", err)
		}
		agent.DeliverLease(ctx, l)
		q.Release(l)
	}
	if _, err := s.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Show(ok); err == nil {
		t.Errorf("sent message %s still queued", ok)
	}

	cl, addr := startAdmin(t, Options{Queue: q, Hops: hops, Routes: table, Metrics: m, Logger: logger, Spool: spool})
	if _, err := cl.Act(ctx, downID, "hold"); err != nil {
		t.Fatal(err)
	}
	deferred, err := cl.List(ctx, Query{Rcpt: "defer.test"})
	if err != nil || len(deferred) != 1 {
		t.Fatalf("deferred = %v, %v", deferred, err)
	}
	if _, err := cl.Act(ctx, deferred[0].ID, "delete"); err != nil {
		t.Fatal(err)
	}
	put(t, q, plainBody, "bob@x.test", "y@good.test")

	got := scrape(t, addr)
	checks := []struct {
		series string
		want   float64
	}{
		{series("ferry_smtpd_connections_total"), 4},
		{series("ferry_smtpd_commands_total", "command=rcpt", "result=ok"), 4},
		{series("ferry_smtpd_commands_total", "command=rcpt", "result=failed"), 4},
		{series("ferry_smtpd_commands_total", "command=data", "result=ok"), 4},
		{series("ferry_smtpd_rejects_total", "stage=RCPT", "code=501", "enhanced=5.5.4"), 4},
		{series("ferry_messages_accepted_total"), 4},
		{series("ferry_deliveries_total", "status=sent"), 1},
		{series("ferry_deliveries_total", "status=deferred"), 2},
		{series("ferry_deliveries_total", "status=bounced"), 1},
		{series("ferry_delivery_replies_total", "status=bounced", "code=550", "enhanced=5.1.1"), 1},
		{series("ferry_delivery_replies_total", "status=deferred", "code=451", "enhanced=4.3.0"), 1},
		{series("ferry_delivery_delay_seconds_count", "status=sent"), 1},
		{series("ferry_delivery_failures_total", "hop=defer.test", "status=deferred"), 1},
		{series("ferry_delivery_failures_total", "hop=down.test", "status=deferred"), 1},
		{series("ferry_delivery_failures_total", "hop=bad.test", "status=bounced"), 1},
		{series("ferry_hop_errors_total", "hop=127.0.0.1:"+strconv.Itoa(deadPort), "kind=connect"), 1},
		{series("ferry_conversions_total"), 1},
		{series("ferry_conversion_kinds_total", "kind=8bit->quoted-printable"), 1},
		{series("ferry_conversion_kinds_total", "kind=header->encoded-word"), 0},
		{series("ferry_messages_finished_total"), 2},
		{series("ferry_messages_deleted_total"), 1},
		{series("ferry_admin_operations_total", "action=hold"), 1},
		{series("ferry_admin_operations_total", "action=delete"), 1},
		{series("ferry_queue_size"), 2},
		{series("ferry_queue_messages", "state=held"), 1},
		{series("ferry_queue_messages", "state=active"), 1},
		{series("ferry_queue_messages", "state=deferred"), 0},
		{series("ferry_queue_recipients", "state=deferred"), 1},
		{series("ferry_queue_writable"), 1},
		{series("ferry_log_events_total", "event=queued", "level=info"), 4},
	}
	for _, c := range checks {
		v, ok := got[c.series]
		if c.want == 0 && !ok {
			continue
		}
		if !ok || v != c.want {
			t.Errorf("%s = %v (present %v), want %v", c.series, v, ok, c.want)
		}
	}
	if v := got[`ferry_delivery_delay_seconds_bucket{status="sent",le="+Inf"}`]; v != 1 {
		t.Errorf("delay histogram +Inf bucket = %v", v)
	}
	for _, name := range []string{"ferry_queue_write_errors_total", "ferry_queue_refused_total"} {
		if v, ok := got[series(name)]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v) on a healthy spool, want 0", name, v, ok)
		}
	}
	if v, ok := got["ferry_queue_oldest_age_seconds"]; !ok || v < 0 || v > 60 {
		t.Errorf("oldest age = %v (present %v)", v, ok)
	}
	// The warn-level log saw none of the info events.
	if strings.Contains(logs.String(), `"msg":"queued"`) {
		t.Errorf("info event reached the warn-level log:\n%s", logs.String())
	}
	if t.Failed() {
		var keys []string
		for k := range got {
			if strings.HasPrefix(k, "ferry_") {
				keys = append(keys, fmt.Sprintf("%s %v", k, got[k]))
			}
		}
		slices.Sort(keys)
		t.Logf("scraped:\n%s", strings.Join(keys, "\n"))
	}
}

func mustRule(t *testing.T, s string) sink.Rule {
	t.Helper()
	r, err := sink.ParseRule(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHandlerEvents feeds single events through the handler: table of
// event → series that must move.
func TestHandlerEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		log    func(l *slog.Logger)
		series string
		want   float64
	}{
		{"inbound tls", func(l *slog.Logger) { l.Info("tls", "session", "s1", "version", "TLS1.3", "cipher", "X") },
			series("ferry_tls_total", "direction=inbound", "outcome=ok", "version=TLS1.3"), 1},
		{"inbound tls failure", func(l *slog.Logger) { l.Info("TLS handshake failed", "session", "s1") },
			series("ferry_tls_total", "direction=inbound", "outcome=failed", "version="), 1},
		{"outbound tls failure", func(l *slog.Logger) {
			l.Info("deliver: TLS failed, retrying without TLS", "relay", "mx.test[192.0.2.1]:25", "err", "x")
		}, series("ferry_hop_errors_total", "hop=mx.test:25", "kind=tls"), 1},
		{"routing", func(l *slog.Logger) { l.Info("deliver: routing failed", "hop", "nx.test", "err", "x") },
			series("ferry_hop_errors_total", "hop=nx.test", "kind=routing"), 1},
		{"auth", func(l *slog.Logger) { l.Warn("authentication failed", "session", "s1") },
			series("ferry_smtpd_auth_total", "outcome=failed"), 1},
		{"hop change", func(l *slog.Logger) {
			l.Warn("hop mx.test:25: stopped offering 8BITMIME", "hop", "mx.test:25", "change", "stopped offering 8BITMIME")
		}, series("ferry_hop_changes_total", "hop=mx.test:25"), 1},
		{"expiry per recipient (queue duration delay)", func(l *slog.Logger) {
			l.Info("expired", "id", "Q1", "rcpt", 0, "delay", 5*24*time.Hour)
		}, series("ferry_recipients_expired_total"), 1},
		{"expiry at lease", func(l *slog.Logger) { l.Info("expired", "id", "Q1", "hop", "x.test", "rcpts", 3) },
			series("ferry_recipients_expired_total"), 3},
		{"conversion with DKIM", func(l *slog.Logger) {
			l.Info("Q1: converted for r (converted 2 parts (8bit→quoted-printable, binary→base64), 1 header encoded, DKIM signature invalidated)",
				"event", "converted", "id", "Q1", "summary", "converted 2 parts (8bit→quoted-printable, binary→base64), 1 header encoded, DKIM signature invalidated", "dkim_broken", true)
		}, series("ferry_conversions_dkim_broken_total"), 1},
		{"conversion kind binary", func(l *slog.Logger) {
			l.Info("c", "event", "converted", "summary", "converted 1 part (binary→base64)", "dkim_broken", false)
		}, series("ferry_conversion_kinds_total", "kind=binary->base64"), 1},
		{"dkim verified", func(l *slog.Logger) {
			l.Info("Q1: …", "event", "verified", "id", "Q1", "results", "dkim=pass header.d=example.org header.s=s1; dkim=fail (body hash did not verify) header.d=example.com; arc=none")
		}, series("ferry_auth_verified_total", "method=dkim", "result=fail"), 1},
		{"arc verified", func(l *slog.Logger) {
			l.Info("Q1: …", "event", "verified", "id", "Q1", "results", "dkim=none; arc=pass")
		}, series("ferry_auth_verified_total", "method=arc", "result=pass"), 1},
		{"signed and sealed", func(l *slog.Logger) {
			l.Info("Q1: …", "event", "signed", "id", "Q1", "summary", "DKIM-signed d=example.org s=s1 (rsa-sha256); ARC set added by arc._domainkey.relay.example (cv=none)")
		}, series("ferry_auth_signed_total", "what=arc"), 1},
		{"with attrs", func(l *slog.Logger) { l.With("session", "s9").Info("connect", "client", "192.0.2.1:5") },
			series("ferry_smtpd_connections_total"), 1},
		{"debug is not counted", func(l *slog.Logger) { l.Debug("connect") },
			series("ferry_smtpd_connections_total"), 0},
		{"dsn", func(l *slog.Logger) { l.Info("dsn", "id", "Q1", "dsn_id", "Q2", "kind", "failed", "to", "a@x.test") },
			series("ferry_dsns_total", "kind=failed"), 1},
		{"dsn suppressed", func(l *slog.Logger) {
			l.Info("dsn-suppressed", "id", "Q1", "kind", "delayed", "reason", "null sender")
		}, series("ferry_dsns_suppressed_total", "kind=delayed", "reason=null sender"), 1},
		{"maillog reject", func(l *slog.Logger) {
			maillog.Reject(l, "s1", "MAIL", smtp.NewReply(550, "5.7.1", "denied"))
		}, series("ferry_smtpd_rejects_total", "stage=MAIL", "code=550", "enhanced=5.7.1"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics()
			tc.log(slog.New(m.Handler(slog.NewTextHandler(io.Discard, nil))))
			q, _ := openQueue(t, discardLogger(), nil)
			_, addr := startAdmin(t, Options{Queue: q, Metrics: m})
			got := scrape(t, addr)[tc.series]
			if got != tc.want {
				t.Errorf("%s = %v, want %v", tc.series, got, tc.want)
			}
		})
	}
}

// TestReplyParsing covers the helpers that read log attributes.
func TestReplyParsing(t *testing.T) {
	for _, tc := range []struct{ in, code, enh string }{
		{"550 5.1.1 no such user", "550", "5.1.1"},
		{"421 closing", "421", ""},
		{"", "", ""},
		{"abc 5.1.1 x", "", ""},
		{"250 2.0.0", "250", "2.0.0"},
		{"451 4.x.0 odd", "451", ""},
	} {
		code, enh := splitReply(tc.in)
		if code != tc.code || enh != tc.enh {
			t.Errorf("splitReply(%q) = %q %q, want %q %q", tc.in, code, enh, tc.code, tc.enh)
		}
	}
	for in, want := range map[string]string{"mx.test[192.0.2.1]:25": "mx.test:25", "none": "none", "[127.0.0.1]:25": "127.0.0.1:25", "[::1]:25": "[::1]:25"} {
		if got := relayHop(in); got != want {
			t.Errorf("relayHop(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"unchanged": "",
		"part 1.1 8bit→quoted-printable, part 1.2 8bit→quoted-printable, body (none)→base64, 1 header field(s) RFC 2047-encoded, 1 composite part(s) relabelled 7bit, 2 repair(s), 812→840 octets": "8bit->quoted-printable none->base64 header->encoded-word relabel repair",
		"converted 2 parts (8bit→quoted-printable, binary→base64), 1 header encoded, DKIM signature invalidated":                                                                                   "8bit->quoted-printable binary->base64 header->encoded-word",
	} {
		if got := strings.Join(conversionKinds(in), " "); got != want {
			t.Errorf("conversionKinds(%q) = %q, want %q", in, got, want)
		}
	}
	_ = queue.Pending
}
