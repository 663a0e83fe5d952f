package deliver

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/testrelay"
	"github.com/ferrymta/ferry/internal/tlspolicy"
	"github.com/ferrymta/ferry/internal/tlspolicy/dnstest"
)

// daneWorld is the internet of the TLS policy tests, on loopback: MX
// hosts played by sinks on 127.0.0.N at one port, a DNSSEC-signed zone
// sec.test and an unsigned zone plain.test served by an in-process
// authoritative server, and a real unbound validating sec.test with its
// trust anchor.
type daneWorld struct {
	port  int
	sinks map[string]*sink.Sink // by MX host label ("mx-ee")
	res   *tlspolicy.Resolver
	dir   string
	auth  *dnstest.Auth
	// plain is the unsigned zone's text, for changes during a test.
	plain string
	// sts, when set, is the MTA-STS policy source of the world's agents.
	sts *tlspolicy.STS
	// roots verify MX hosts under MTA-STS.
	roots *x509.CertPool
	// routes, when set, are the routing table of the world's agents
	// (direct delivery for the rest).
	routes []route.Route
}

// mxSpec is one MX host of the world.
type mxSpec struct {
	label    string // host label under its zone
	zone     string // "sec.test" or "plain.test"
	cert     *testrelay.TestCert
	keywords []string // nil: the sink's defaults; STARTTLS is added with a cert
	tlsa     []string // TLSA record data, "3 1 1 <hex>"
	// bogus changes the TLSA records after signing: the validating
	// resolver finds them bogus and answers SERVFAIL.
	bogus bool
}

// startDANEWorld starts the MX hosts, then the DNS that describes them;
// extra holds more records per zone ("plain.test": lines).
func startDANEWorld(t *testing.T, specs []mxSpec, extra map[string][]string) *daneWorld {
	t.Helper()
	w := &daneWorld{sinks: map[string]*sink.Sink{}, dir: t.TempDir()}
	zones := map[string]*strings.Builder{}
	for _, z := range []string{"sec.test", "plain.test"} {
		b := &strings.Builder{}
		b.WriteString(dnstest.ZoneHead(z))
		zones[z] = b
	}
	w.startSinks(t, specs)
	for i, s := range specs {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		b := zones[s.zone]
		// The domain "d-LABEL" has the host as its MX.
		fmt.Fprintf(b, "d-%s MX 10 %s\n%s A %s\n", s.label, s.label, s.label, ip)
		// At port 25 for direct delivery, at the sinks' port for routes
		// with configured next hops (RFC 7672 §2.2.3: _PORT._tcp.HOST).
		for _, r := range s.tlsa {
			fmt.Fprintf(b, "_25._tcp.%s TLSA %s\n_%d._tcp.%s TLSA %s\n", s.label, r, w.port, s.label, r)
		}
	}
	for z, lines := range extra {
		for _, l := range lines {
			fmt.Fprintln(zones[z], l)
		}
	}
	signed, anchor := dnstest.SignZone(t, "sec.test.", zones["sec.test"].String())
	for _, sp := range specs {
		if sp.bogus {
			signed = tamperTLSA(t, signed, "_25._tcp."+sp.label+"."+sp.zone+".")
			signed = tamperTLSA(t, signed, fmt.Sprintf("_%d._tcp.%s.%s.", w.port, sp.label, sp.zone))
		}
	}
	w.plain = zones["plain.test"].String()
	w.auth = dnstest.StartAuth(t, signed, w.plain)
	ub := dnstest.StartUnbound(t, w.auth.Addr, []string{"sec.test.", "plain.test."}, []string{anchor})
	// TXT records (MTA-STS) come straight from the authoritative server,
	// uncached, so a test can change them; the rest from unbound.
	res, err := tlspolicy.NewResolver(tlspolicy.ResolverConfig{Servers: []string{w.auth.Addr}, DNSSEC: ub.Addr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.res = res
	return w
}

// tamperTLSA flips the last hex digit of the TLSA record at owner in a
// signed zone.
func tamperTLSA(t *testing.T, zone, owner string) string {
	t.Helper()
	lines := strings.Split(zone, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, owner) && strings.Contains(l, "\tTLSA\t") {
			last := l[len(l)-1]
			flip := byte('0')
			if last == '0' {
				flip = '1'
			}
			lines[i] = l[:len(l)-1] + string(flip)
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("no TLSA record at %s in the signed zone", owner)
	return ""
}

// startSinks starts the MX hosts on 127.0.0.2, 127.0.0.3, ... at one
// port, the first one's; when another program holds that port at a later
// address, it starts over with a new port (at most five times).
func (w *daneWorld) startSinks(t *testing.T, specs []mxSpec) {
	t.Helper()
	var lastErr error
	for range 5 {
		w.port = 0
		var started []*sink.Sink
		lastErr = nil
		for i, s := range specs {
			ip := fmt.Sprintf("127.0.0.%d", i+2)
			opts := sink.Options{Hostname: s.label + "." + s.zone, Keywords: s.keywords, Addr: fmt.Sprintf("%s:%d", ip, w.port)}
			if s.cert != nil {
				cf, kf := filepath.Join(w.dir, s.label+".crt"), filepath.Join(w.dir, s.label+".key")
				s.cert.WriteFiles(t, cf, kf)
				opts.TLSCert, opts.TLSKey = cf, kf
			}
			sk, err := sink.Start(opts)
			if err != nil {
				lastErr = fmt.Errorf("MX host %s at %s: %w", s.label, opts.Addr, err)
				break
			}
			started = append(started, sk)
			if w.port == 0 {
				w.port = int(netip.MustParseAddrPort(sk.Addr()).Port())
			}
			w.sinks[s.label] = sk
		}
		if lastErr == nil {
			for _, sk := range started {
				t.Cleanup(func() { sk.Close() })
			}
			return
		}
		for _, sk := range started {
			sk.Close()
		}
	}
	t.Fatal(lastErr)
}

// agent returns a delivery agent for direct delivery (or w.routes) through
// the world's DNS with the TLS policy engine, and its log.
func (w *daneWorld) agent(t *testing.T, q Queue) (*Agent, *syncBuffer, *tlspolicy.Engine) {
	t.Helper()
	tab, err := route.NewTable(route.Options{Resolver: w.res, MXPort: w.port}, w.routes...)
	if err != nil {
		t.Fatal(err)
	}
	var eng *tlspolicy.Engine
	a, logs := testAgent(t, q, route.Route{Pattern: "unused.test", Hops: []route.NextHop{{Host: "127.0.0.1", Port: 1, NoMX: true}}}, func(c *Config) {
		c.Routes = tab
		eng = tlspolicy.NewEngine(tlspolicy.EngineConfig{Resolver: w.res, Logger: c.Logger, STS: w.sts})
		c.TLSPolicy = eng
		c.RootCAs = w.roots
	})
	return a, logs, eng
}

// deliverTo delivers one message to rcpt@domain through a fresh agent.
func (w *daneWorld) deliverTo(t *testing.T, id, domain string, mod func(*queue.Item)) (*memQueue, *syncBuffer) {
	t.Helper()
	q, logs, _ := w.deliverWith(t, id, domain, mod)
	return q, logs
}

// deliverWith is deliverTo that also returns the agent's policy engine.
func (w *daneWorld) deliverWith(t *testing.T, id, domain string, mod func(*queue.Item)) (*memQueue, *syncBuffer, *tlspolicy.Engine) {
	t.Helper()
	q := newMemQueue()
	a, logs, eng := w.agent(t, q)
	it := testMessage(id, "Subject: dane\r\n\r\nhello\r\n", "rcpt@"+domain)
	if mod != nil {
		mod(&it)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a.DeliverLease(ctx, &queue.Lease{Hop: domain, Items: []queue.Item{it}})
	return q, logs, eng
}

// TestDANE runs the DANE cases of RFC 7672 against real MX hosts (sinks
// with certificates) behind a real validating resolver.
func TestDANE(t *testing.T) {
	ca := testrelay.NewTestCA(t, "Test DANE CA")
	now := time.Now()
	ee := testrelay.NewTestCert(t, "mx-ee.sec.test", "mx-ee.sec.test")
	other := testrelay.NewTestCert(t, "other", "other.test")
	wrongKey := testrelay.NewTestCert(t, "mx-bad.sec.test", "mx-bad.sec.test")
	expired := ca.Issue(t, "mx-exp.sec.test", now.Add(-48*time.Hour), now.Add(-24*time.Hour), "mx-exp.sec.test")
	taLeaf := ca.Issue(t, "mx-ta.sec.test", now.Add(-time.Hour), now.Add(time.Hour), "mx-ta.sec.test")
	taWrongName := ca.Issue(t, "elsewhere.test", now.Add(-time.Hour), now.Add(time.Hour), "elsewhere.test")
	taExpired := ca.Issue(t, "mx-taexp.sec.test", now.Add(-48*time.Hour), now.Add(-24*time.Hour), "mx-taexp.sec.test")
	plainCert := testrelay.NewTestCert(t, "mx-plain.plain.test", "mx-plain.plain.test")
	notlsa := testrelay.NewTestCert(t, "mx-notlsa.sec.test", "mx-notlsa.sec.test")
	rtls := testrelay.NewTestCert(t, "mx-rtls.sec.test", "mx-rtls.sec.test")
	withRequireTLS := []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "REQUIRETLS"}
	w := startDANEWorld(t, []mxSpec{
		{label: "mx-ee", zone: "sec.test", cert: &ee, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(ee.Leaf)}},
		{label: "mx-bad", zone: "sec.test", cert: &wrongKey, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(other.Leaf), "3 0 2 " + dnstest.CertSHA512(other.Leaf)}},
		{label: "mx-exp", zone: "sec.test", cert: &expired, tlsa: []string{"3 0 1 " + dnstest.CertSHA256(expired.Leaf)}},
		{label: "mx-ta", zone: "sec.test", cert: &taLeaf, tlsa: []string{"2 0 1 " + dnstest.CertSHA256(ca.Cert)}},
		{label: "mx-taname", zone: "sec.test", cert: &taWrongName, tlsa: []string{"2 1 2 " + dnstest.SPKISHA512(ca.Cert)}},
		{label: "mx-taexp", zone: "sec.test", cert: &taExpired, tlsa: []string{"2 0 0 " + hex.EncodeToString(ca.Cert.Raw)}},
		{label: "mx-strip", zone: "sec.test", tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(ee.Leaf)}},
		{label: "mx-notlsa", zone: "sec.test", cert: &notlsa},
		{label: "mx-unusable", zone: "sec.test", cert: &other, tlsa: []string{"1 1 1 " + dnstest.SPKISHA256(other.Leaf), "0 0 1 " + dnstest.CertSHA256(ca.Cert)}},
		{label: "mx-plain", zone: "plain.test", cert: &plainCert, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(other.Leaf)}},
		{label: "mx-rtls", zone: "sec.test", cert: &rtls, keywords: withRequireTLS, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(rtls.Leaf)}},
		{label: "mx-bogus", zone: "sec.test", cert: &ee, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(ee.Leaf)}, bogus: true},
	}, map[string][]string{"sec.test": {
		// d-mix: a DANE MX that is down (nothing listens at 127.0.0.99),
		// then an unauthenticated one.
		"d-mix MX 10 mx-down", "d-mix MX 20 mx-notlsa", "mx-down A 127.0.0.99",
		"_25._tcp.mx-down TLSA 3 1 1 " + dnstest.SPKISHA256(ee.Leaf),
		// d-alias: its MX host is a CNAME for mx-ee, whose name has the
		// TLSA records (RFC 7672 §2.2.2).
		"d-alias MX 10 mx-alias", "mx-alias CNAME mx-ee",
	}})
	requireTLS := func(it *queue.Item) { it.Env.RequireTLS = true }
	optional := func(it *queue.Item) { it.Env.TLSOptional = true }
	w.run(t, []policyCase{
		{name: "EE match", domain: "d-mx-ee.sec.test", state: queue.Sent, reply: "250", mx: "mx-ee", arrives: true,
			log: []string{"policy=dane", "1 usable TLSA record(s) at _25._tcp.mx-ee.sec.test."}},
		{name: "MX host a CNAME: TLSA at the expanded name", domain: "d-alias.sec.test", state: queue.Sent, reply: "250", mx: "mx-ee", arrives: true,
			log: []string{"policy=dane", "at _25._tcp.mx-ee.sec.test. (mx-alias.sec.test is a CNAME for mx-ee.sec.test)"}},
		{name: "EE mismatch defers 4.7.5 naming the records", domain: "d-mx-bad.sec.test", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-bad",
			replyHas: []string{"_25._tcp.mx-bad.sec.test. TLSA 3 1 1", "TLSA 3 0 2"}},
		{name: "bogus TLSA records defer 4.7.5", domain: "d-mx-bogus.sec.test", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-bogus",
			replyHas: []string{"DANE: TLSA lookup for _25._tcp.mx-bogus.sec.test. failed: server answered SERVFAIL"}},
		{name: "expired certificate, DANE-EE ok", domain: "d-mx-exp.sec.test", state: queue.Sent, reply: "250", mx: "mx-exp", arrives: true},
		{name: "TA chain", domain: "d-mx-ta.sec.test", state: queue.Sent, reply: "250", mx: "mx-ta", arrives: true},
		{name: "TA chain with the wrong name defers", domain: "d-mx-taname.sec.test", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-taname",
			replyHas: []string{"TLSA 2 1 2", "mx-taname.sec.test"}},
		{name: "TA chain with an expired leaf defers", domain: "d-mx-taexp.sec.test", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-taexp",
			replyHas: []string{"expired"}},
		{name: "STARTTLS stripped defers, never plain text", domain: "d-mx-strip.sec.test", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-strip",
			replyHas: []string{"_25._tcp.mx-strip.sec.test.", "STARTTLS"}},
		{name: "secure MX without TLSA falls back", domain: "d-mx-notlsa.sec.test", state: queue.Sent, reply: "250", mx: "mx-notlsa", arrives: true,
			log: []string{"no TLSA records at _25._tcp.mx-notlsa.sec.test."}},
		{name: "only unusable TLSA records: TLS mandatory, not authenticated", domain: "d-mx-unusable.sec.test", state: queue.Sent, reply: "250",
			mx: "mx-unusable", arrives: true, log: []string{"policy=encrypt"}},
		{name: "insecure zone: no DANE", domain: "d-mx-plain.plain.test", state: queue.Sent, reply: "250", mx: "mx-plain", arrives: true,
			log: []string{"MX records of d-mx-plain.plain.test are not DNSSEC-signed"}},
		{name: "REQUIRETLS to a DANE hop offering it", domain: "d-mx-rtls.sec.test", mod: requireTLS, state: queue.Sent, reply: "250",
			mx: "mx-rtls", arrives: true, mailLine: "REQUIRETLS"},
		{name: "REQUIRETLS to a DANE hop without it fails 5.7.30", domain: "d-mx-ee.sec.test", mod: requireTLS, state: queue.Failed, reply: "550 5.7.30", mx: "mx-ee"},
		{name: "REQUIRETLS to an unauthenticated hop fails 5.7.30", domain: "d-mx-notlsa.sec.test", mod: requireTLS, state: queue.Failed, reply: "550 5.7.30", mx: "mx-notlsa"},
		{name: "REQUIRETLS waits while the authenticated MX is down", domain: "d-mix.sec.test", mod: requireTLS, state: queue.Deferred, reply: "451 ", mx: "mx-notlsa"},
		{name: "TLS-Required: No waives a failing DANE check", domain: "d-mx-bad.sec.test", mod: optional, state: queue.Sent, reply: "250",
			mx: "mx-bad", arrives: true, log: []string{"TLS-Required: No (RFC 8689 §5) waives dane"}},
		{name: "REQUIRETLS overrides TLS-Required: No", domain: "d-mx-bad.sec.test", mod: func(it *queue.Item) { it.Env.TLSOptional, it.Env.RequireTLS = true, true },
			state: queue.Deferred, reply: "451 4.7.5", mx: "mx-bad"},
	})
}

// policyCase is one delivery of a TLS policy test and what must come of
// it.
type policyCase struct {
	name, domain string
	mod          func(*queue.Item)
	state        queue.RcptState
	reply        string   // prefix of the recipient's reply
	replyHas     []string // texts the reply holds
	log          []string // texts the delivery log holds
	mx           string   // the MX host's label
	arrives      bool     // whether the message reaches it
	mailLine     string   // a text its MAIL line holds
}

// run delivers one message per case, each through a fresh agent.
func (w *daneWorld) run(t *testing.T, cases []policyCase) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("P%d", i)
			before := len(w.sinks[tc.mx].Messages())
			q, logs := w.deliverTo(t, id, tc.domain, tc.mod)
			q.expect(t, id, 0, tc.state, tc.reply)
			r := q.last(t, id, 0).Reply.String()
			for _, s := range tc.replyHas {
				if !strings.Contains(r, s) {
					t.Errorf("reply %q lacks %q", r, s)
				}
			}
			for _, s := range tc.log {
				if !strings.Contains(logs.String(), s) {
					t.Errorf("log lacks %q:\n%s", s, logs)
				}
			}
			msgs := w.sinks[tc.mx].Messages()
			if arrived := len(msgs) > before; arrived != tc.arrives {
				t.Errorf("%s got %d new messages, want arrival %v", tc.mx, len(msgs)-before, tc.arrives)
			}
			if tc.mailLine != "" && (len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1].MailLine, tc.mailLine)) {
				t.Errorf("MAIL line lacks %q: %v", tc.mailLine, msgs)
			}
		})
	}
}
