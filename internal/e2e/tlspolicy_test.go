package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
	"github.com/ferrymta/ferry/internal/tlspolicy/dnstest"
)

// tlsWorld is the outbound TLS policy setting of the built binary's
// tests: "ferry sink" MX hosts with certificates on 127.0.0.N at one port,
// a signed zone sec.test (DANE) and an unsigned zone plain.test (MTA-STS)
// on an in-process authoritative server behind a real unbound, and an
// HTTPS policy server with a test CA.
type tlsWorld struct {
	hops   map[string]*hop
	port   string // the sinks' port
	config string // the [delivery] part of the relay configuration
	policy *dnstest.PolicyServer
}

func startTLSWorld(t *testing.T) *tlsWorld {
	t.Helper()
	dir := t.TempDir()
	ca := testrelay.NewTestCA(t, "E2E CA")
	now := time.Now()
	ee := testrelay.NewTestCert(t, "mx-ee.sec.test", "mx-ee.sec.test")
	bad := testrelay.NewTestCert(t, "mx-bad.sec.test", "mx-bad.sec.test")
	sts := ca.Issue(t, "mx-sts.plain.test", now.Add(-time.Hour), now.Add(time.Hour), "mx-sts.plain.test")
	rtls := testrelay.NewTestCert(t, "mx-rtls.sec.test", "mx-rtls.sec.test")
	type mx struct {
		label, zone string
		cert        testrelay.TestCert
		tlsa        string
		flags       []string
	}
	mxs := []mx{
		{"mx-ee", "sec.test", ee, "3 1 1 " + dnstest.SPKISHA256(ee.Leaf), nil},
		{"mx-bad", "sec.test", bad, "3 1 1 " + dnstest.SPKISHA256(ee.Leaf), nil},
		{"mx-sts", "plain.test", sts, "", nil},
		{"mx-rtls", "sec.test", rtls, "3 1 1 " + dnstest.SPKISHA256(rtls.Leaf), []string{"--keywords", "PIPELINING,8BITMIME,ENHANCEDSTATUSCODES,REQUIRETLS"}},
	}
	w := &tlsWorld{hops: map[string]*hop{}}
	zones := map[string]*strings.Builder{"sec.test": {}, "plain.test": {}}
	for z, b := range zones {
		b.WriteString(dnstest.ZoneHead(z))
	}
	port := ""
	for i, m := range mxs {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		cf, kf := filepath.Join(dir, m.label+".crt"), filepath.Join(dir, m.label+".key")
		m.cert.WriteFiles(t, cf, kf)
		addr := ip + ":0"
		if port != "" {
			addr = net.JoinHostPort(ip, port)
		}
		h := startSink(t, addr, append([]string{"--hostname", m.label + "." + m.zone, "--tls-cert", cf, "--tls-key", kf}, m.flags...)...)
		if port == "" {
			_, port, _ = net.SplitHostPort(h.Addr)
		}
		w.hops[m.label] = h
		b := zones[m.zone]
		fmt.Fprintf(b, "d-%s MX 10 %s\n%s A %s\n", m.label, m.label, m.label, ip)
		if m.tlsa != "" {
			// At port 25 for MX delivery, at the sinks' port for routes
			// with next hops and tls = "dane" (_PORT._tcp.HOST).
			fmt.Fprintf(b, "_25._tcp.%s TLSA %s\n_%s._tcp.%s TLSA %s\n", m.label, m.tlsa, port, m.label, m.tlsa)
		}
	}
	policy := "version: STSv1\r\nmode: enforce\r\nmx: mx-sts.plain.test\r\nmax_age: 86400\r\n"
	w.policy = dnstest.StartPolicyServer(t, ca.Issue(t, "mta-sts", now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.d-mx-sts.plain.test").TLS,
		map[string]string{"mta-sts.d-mx-sts.plain.test": policy})
	fmt.Fprintf(zones["plain.test"], "mta-sts.d-mx-sts A 127.0.0.1\n_mta-sts.d-mx-sts TXT \"v=STSv1; id=e2e1\"\n")
	fmt.Fprintf(zones["plain.test"], "_smtp._tls.d-mx-sts TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@d-mx-ee.sec.test\"\n")
	signed, anchor := dnstest.SignZone(t, "sec.test.", zones["sec.test"].String())
	auth := dnstest.StartAuth(t, signed, zones["plain.test"].String())
	ub := dnstest.StartUnbound(t, auth.Addr, []string{"sec.test.", "plain.test."}, []string{anchor})
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	w.port = port
	w.config = fmt.Sprintf(`
[delivery]
resolvers = [%q]
dnssec_resolver = %q
mx_port = %s
mta_sts_port = %d
mta_sts_ca_file = %q
tls_ca_file = %q
`, ub.Addr, ub.Addr, port, w.policy.Port(), caFile, caFile)
	return w
}

// TestTLSPolicyBinary runs DANE, MTA-STS and TLS-Required: No through
// "ferry serve", and "ferry probe DOMAIN", on the built binary.
func TestTLSPolicyBinary(t *testing.T) {
	// Not parallel: the world (sinks, unbound, policy server) is heavy,
	// and timing-sensitive parallel tests (TestHostileClients) suffer.
	w := startTLSWorld(t)
	spool := filepath.Join(t.TempDir(), "spool")
	const noReports = "tls_reports = false\n" // mx-ee must hold the test's messages only
	r := startRelay(t, w.config+noReports+shortRetry, spool)
	c := testrelay.Dial(t, r.Addr)
	msg := func(extra string) []byte {
		return []byte("From: <tester@example.net>\r\nSubject: tls policy\r\n" + extra + "\r\nhello\r\n")
	}
	c.SendID(sender, []string{"a@d-mx-ee.sec.test"}, "", msg(""))
	badID := c.SendID(sender, []string{"b@d-mx-bad.sec.test"}, "", msg(""))
	c.SendID(sender, []string{"c@d-mx-bad.sec.test"}, "", msg("TLS-Required: No\r\n"))
	c.SendID(sender, []string{"d@d-mx-sts.plain.test"}, "", msg(""))
	c.Quit()

	// DANE-EE match: delivered; the log says why.
	if caps := w.hops["mx-ee"].waitCaptures(t, 1); len(caps) != 1 {
		t.Fatalf("mx-ee holds %d messages", len(caps))
	}
	r.WaitLog(t, "event=tls_policy", "mx=mx-ee.sec.test", "policy=dane")
	// DANE mismatch: deferred with 4.7.5 naming the record, never sent.
	r.WaitLog(t, badID, "status=deferred", "4.7.5", "_25._tcp.mx-bad.sec.test. TLSA 3 1 1")
	// TLS-Required: No waives the failing DANE check for its message only.
	caps := w.hops["mx-bad"].waitCaptures(t, 1)
	if len(caps) != 1 || !strings.Contains(string(caps[0].data), "TLS-Required: No") {
		t.Fatalf("mx-bad holds %d messages", len(caps))
	}
	// MTA-STS enforce with a matching MX: delivered, verified by the test CA.
	w.hops["mx-sts"].waitCaptures(t, 1)
	r.WaitLog(t, "mx=mx-sts.plain.test", "policy=mta-sts")
	if _, err := os.Stat(filepath.Join(spool, "mta-sts", "d-mx-sts.plain.test.json")); err != nil {
		t.Errorf("no MTA-STS cache file in the spool: %v", err)
	}

	// ferry probe DOMAIN, JSON and text.
	cfgFile := filepath.Join(t.TempDir(), "probe.toml")
	if err := os.WriteFile(cfgFile, []byte(w.config), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := ferry().Run(t, "probe", "--config", cfgFile, "--json", "d-mx-ee.sec.test")
	var rep struct {
		Domain string `json:"domain"`
		DNSSEC bool   `json:"dnssec_resolver"`
		Hosts  []struct {
			Host string `json:"host"`
			DANE struct {
				Applies bool     `json:"applies"`
				TLSA    []string `json:"tlsa"`
			} `json:"dane"`
			Policy string `json:"policy"`
			Check  struct {
				Result string `json:"result"`
			} `json:"check"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("probe --json: code %d, %v\n%s\n%s", code, err, out, errOut)
	}
	if !rep.DNSSEC || len(rep.Hosts) != 1 || rep.Hosts[0].Host != "mx-ee.sec.test" || !rep.Hosts[0].DANE.Applies ||
		rep.Hosts[0].Policy != "dane" || rep.Hosts[0].Check.Result != "pass" || len(rep.Hosts[0].DANE.TLSA) != 1 {
		t.Errorf("probe report %s", out)
	}
	out, _, code = ferry().Run(t, "probe", "--config", cfgFile, "d-mx-bad.sec.test")
	if code != 1 || !strings.Contains(out, "Check:   fail: DANE: no TLSA record matches") {
		t.Errorf("probe of the mismatching host: code %d\n%s", code, out)
	}
	out, _, code = ferry().Run(t, "probe", "--config", cfgFile, "d-mx-sts.plain.test")
	if code != 0 || !strings.Contains(out, "MTA-STS:   mode enforce, mx mx-sts.plain.test") || !strings.Contains(out, "Policy:  mta-sts") ||
		!strings.Contains(out, "TLS-RPT:   reports go to mailto:tlsrpt@d-mx-ee.sec.test") {
		t.Errorf("probe of the MTA-STS domain: code %d\n%s", code, out)
	}

	// ferry explain names the policy and why.
	mfile := filepath.Join(t.TempDir(), "m.eml")
	if err := os.WriteFile(mfile, msg(""), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = ferry().Run(t, "explain", "--config", cfgFile, "--to", "x@d-mx-ee.sec.test", mfile)
	if code != 0 || !strings.Contains(out, "TLS:       MX mx-ee.sec.test: dane (1 usable TLSA record(s) at _25._tcp.mx-ee.sec.test.)") {
		t.Errorf("explain: code %d\n%s\n%s", code, out, errOut)
	}

	// Restart with the policy server down: the cached policy survives in
	// the spool and still applies.
	r.Stop(t)
	w.policy.Fail.Store(true)
	fetches := w.policy.Fetches.Load()
	r = startRelay(t, w.config+noReports+shortRetry, spool)
	c = testrelay.Dial(t, r.Addr)
	c.SendID(sender, []string{"e@d-mx-sts.plain.test"}, "", msg(""))
	c.Quit()
	w.hops["mx-sts"].waitCaptures(t, 2)
	r.WaitLog(t, "mx=mx-sts.plain.test", "policy=mta-sts", "cached MTA-STS policy id e2e1")
	if w.policy.Fetches.Load() != fetches {
		t.Errorf("the restarted relay fetched the policy again instead of using its cache")
	}
}

// TestDANEOffWithoutValidatingResolver: without dnssec_resolver the relay
// says once at start that DANE is off and why.
func TestDANEOffWithoutValidatingResolver(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "[delivery]\nresolvers = [\"127.0.0.1:9\"]\n", "")
	line := r.WaitLog(t, "DANE is off", "dnssec_resolver")
	if n := len(r.LogLines("DANE is off")); n != 1 {
		t.Errorf("%d lines say DANE is off: %s", n, line)
	}
}

// TestRequireTLSBinary: REQUIRETLS taken over TLS at receipt goes on to an
// MX host that DANE authenticates and that offers REQUIRETLS, and fails at
// once with 5.7.30 for one that does not offer it (RFC 8689 §4.2.1).
func TestRequireTLSBinary(t *testing.T) {
	// Not parallel: the world (sinks, unbound, policy server) is heavy,
	// and timing-sensitive parallel tests (TestHostileClients) suffer.
	w := startTLSWorld(t)
	files := newTLSFiles(t)
	listener := fmt.Sprintf(`
[[listener]]
address = "127.0.0.1:2525"
keywords = ["8BITMIME", "PIPELINING", "SIZE", "ENHANCEDSTATUSCODES", "STARTTLS", "REQUIRETLS"]
tls_cert = %q
tls_key = %q
`, files.certFile, files.keyFile)
	r := startRelay(t, listener+w.config+"tls_reports = false\n"+shortRetry, "")
	c := testrelay.Dial(t, r.Addr)
	c.Expect(220, c.Cmd("STARTTLS"))
	roots := x509.NewCertPool()
	ca, err := os.ReadFile(files.caFile)
	if err != nil || !roots.AppendCertsFromPEM(ca) {
		t.Fatalf("CA file: %v", err)
	}
	tc := tls.Client(c.Conn, &tls.Config{ServerName: "localhost", RootCAs: roots})
	c.Conn, c.R = tc, bufio.NewReader(tc)
	c.EHLO = c.Expect(250, c.Cmd("EHLO %s", testrelay.ClientEHLO))
	content := []byte("From: <tester@example.net>\r\nSubject: requiretls\r\n\r\nhello\r\n")
	c.SendID(sender, []string{"a@d-mx-rtls.sec.test"}, "REQUIRETLS", content)
	noHop := c.SendID(sender, []string{"b@d-mx-ee.sec.test"}, "REQUIRETLS", content)
	c.Quit()
	caps := w.hops["mx-rtls"].waitCaptures(t, 1)
	if !strings.Contains(caps[0].sc.MailLine, "REQUIRETLS") {
		t.Errorf("MAIL line at the hop: %q", caps[0].sc.MailLine)
	}
	r.WaitLog(t, noHop, "status=bounced", "550 5.7.30 REQUIRETLS support required but not offered by the next hop")
	if d := r.LogLines(noHop, "status=deferred"); len(d) != 0 {
		t.Errorf("deferred before failing: %v", d) // RFC 8689 §4.2.1: no retries
	}
	if n := w.hops["mx-ee"].count(t); n != 0 {
		t.Errorf("mx-ee got %d messages", n)
	}
}

// TestTLSReportBinary: "ferry serve" counts the sessions under a domain's
// MTA-STS policy and mails the aggregate report (RFC 8460) from <> to the
// domain's rua, through its own queue (here to an MX host DANE protects).
// The report period is shortened to two seconds ([delivery]
// tls_report_period, a test knob).
func TestTLSReportBinary(t *testing.T) {
	// Not parallel: the world (sinks, unbound, policy server) is heavy,
	// and timing-sensitive parallel tests (TestHostileClients) suffer.
	w := startTLSWorld(t)
	r := startRelay(t, w.config+"tls_report_period = \"2s\"\n"+shortRetry, "")
	c := testrelay.Dial(t, r.Addr)
	c.SendID(sender, []string{"a@d-mx-sts.plain.test"}, "", []byte("Subject: report me\r\n\r\nhello\r\n"))
	c.Quit()
	w.hops["mx-sts"].waitCaptures(t, 1)
	var report []byte
	testrelay.WaitFor(t, "a TLS report at mx-ee", func() bool {
		for _, cp := range w.hops["mx-ee"].captures(t) {
			if bytes.Contains(cp.data, []byte("TLS-Report-Domain: d-mx-sts.plain.test")) {
				if cp.sc.From != "<>" {
					t.Errorf("report sent from %s, want <>", cp.sc.From)
				}
				report = cp.data
				return true
			}
		}
		return false
	})
	js := dnstest.ReportFromMail(t, report)
	dnstest.ValidateTLSRPT(t, js)
	var rep struct {
		Org      string `json:"organization-name"`
		Policies []struct {
			Policy struct {
				Type   string   `json:"policy-type"`
				Domain string   `json:"policy-domain"`
				MXHost []string `json:"mx-host"`
			} `json:"policy"`
			Summary struct {
				Success int `json:"total-successful-session-count"`
				Failure int `json:"total-failure-session-count"`
			} `json:"summary"`
		} `json:"policies"`
	}
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Org != relayHostname || len(rep.Policies) != 1 || rep.Policies[0].Policy.Type != "sts" ||
		rep.Policies[0].Policy.Domain != "d-mx-sts.plain.test" || rep.Policies[0].Summary.Success != 1 || rep.Policies[0].Summary.Failure != 0 {
		t.Errorf("report %s", js)
	}
	r.WaitLog(t, "event=tlsrpt_sent", "domain=d-mx-sts.plain.test")
}
