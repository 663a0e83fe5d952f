package deliver

import (
	"fmt"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/testrelay"
	"github.com/ferrymta/ferry/internal/tlspolicy"
	"github.com/ferrymta/ferry/internal/tlspolicy/dnstest"
)

// TestDANENextHop runs routes with configured next hops and tls = "dane"
// or "dane-only" (Postfix's levels for a relayhost) against real hops
// behind a real validating resolver: the TLSA records are those of the
// next hop's name at the port the route dials (RFC 7672 §2.2.3), or of the
// MX hosts of a next hop looked up by MX when its MX RRset is secure (RFC
// 7672 §2.2.1).
func TestDANENextHop(t *testing.T) {
	ca := testrelay.NewTestCA(t, "Test next-hop DANE CA")
	ee := testrelay.NewTestCert(t, "mx-ee.sec.test", "mx-ee.sec.test")
	other := testrelay.NewTestCert(t, "other", "other.test")
	bad := testrelay.NewTestCert(t, "mx-bad.sec.test", "mx-bad.sec.test")
	notlsa := testrelay.NewTestCert(t, "mx-notlsa.sec.test", "mx-notlsa.sec.test")
	plain := testrelay.NewTestCert(t, "mx-plain.plain.test", "mx-plain.plain.test")
	rtls := testrelay.NewTestCert(t, "mx-rtls.sec.test", "mx-rtls.sec.test")
	taLeaf := ca.Issue(t, "mx-ta.sec.test", ee.Leaf.NotBefore, ee.Leaf.NotAfter, "mx-ta.sec.test")
	w := startDANEWorld(t, []mxSpec{
		{label: "mx-ee", zone: "sec.test", cert: &ee, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(ee.Leaf)}},
		{label: "mx-bad", zone: "sec.test", cert: &bad, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(other.Leaf)}},
		{label: "mx-notlsa", zone: "sec.test", cert: &notlsa},
		{label: "mx-plain", zone: "plain.test", cert: &plain, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(plain.Leaf)}},
		{label: "mx-strip", zone: "sec.test", tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(ee.Leaf)}},
		{label: "mx-unusable", zone: "sec.test", cert: &other, tlsa: []string{"1 1 1 " + dnstest.SPKISHA256(other.Leaf)}},
		{label: "mx-bogus", zone: "sec.test", cert: &ee, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(ee.Leaf)}, bogus: true},
		{label: "mx-ta", zone: "sec.test", cert: &taLeaf, tlsa: []string{"2 0 1 " + dnstest.CertSHA256(ca.Cert)}},
		{label: "mx-rtls", zone: "sec.test", cert: &rtls, keywords: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "REQUIRETLS"},
			tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(rtls.Leaf)}},
	}, nil)
	// One route per recipient domain: "LABEL-dane.example" to the hop
	// [LABEL.ZONE]:PORT with tls = "dane", "LABEL-only.example" with
	// "dane-only".
	hop := func(host string) route.NextHop { return route.NextHop{Host: host, Port: w.port, NoMX: true} }
	for _, h := range []struct{ label, zone string }{{"mx-ee", "sec.test"}, {"mx-bad", "sec.test"}, {"mx-notlsa", "sec.test"},
		{"mx-plain", "plain.test"}, {"mx-strip", "sec.test"}, {"mx-unusable", "sec.test"}, {"mx-bogus", "sec.test"}, {"mx-ta", "sec.test"},
		{"mx-rtls", "sec.test"}} {
		host := h.label + "." + h.zone
		w.routes = append(w.routes,
			route.Route{Pattern: h.label + "-dane.example", Hops: []route.NextHop{hop(host)}, Policy: route.Policy{TLS: route.TLSDANE}},
			route.Route{Pattern: h.label + "-only.example", Hops: []route.NextHop{hop(host)}, Policy: route.Policy{TLS: route.TLSDANEOnly}})
	}
	w.routes = append(w.routes,
		// Next hops looked up by MX: a signed one, an unsigned one.
		route.Route{Pattern: "mx-secure.example", Hops: []route.NextHop{{Host: "d-mx-ee.sec.test", Port: w.port}}, Policy: route.Policy{TLS: route.TLSDANEOnly}},
		route.Route{Pattern: "mx-insecure.example", Hops: []route.NextHop{{Host: "d-mx-plain.plain.test", Port: w.port}}, Policy: route.Policy{TLS: route.TLSDANEOnly}},
		// dane-only skips a hop without TLSA records for the next one.
		route.Route{Pattern: "second.example", Hops: []route.NextHop{hop("mx-notlsa.sec.test"), hop("mx-ee.sec.test")}, Policy: route.Policy{TLS: route.TLSDANEOnly}},
		// tls = "may" to the same hop: no DANE, as before.
		route.Route{Pattern: "may.example", Hops: []route.NextHop{hop("mx-bad.sec.test")}},
		// dane-only without next hops: MX delivery that needs DANE.
		route.Route{Pattern: "d-mx-ee.sec.test", Policy: route.Policy{TLS: route.TLSDANEOnly}},
		route.Route{Pattern: "d-mx-notlsa.sec.test", Policy: route.Policy{TLS: route.TLSDANEOnly}},
		// tls = "required" for MX delivery: a verified certificate
		// whatever the MX host's DANE or MTA-STS policy allows.
		route.Route{Pattern: "d-mx-ta.sec.test", Policy: route.Policy{TLS: route.TLSRequired}},
		route.Route{Pattern: "d-mx-plain.plain.test", Policy: route.Policy{TLS: route.TLSRequired}},
		route.Route{Pattern: "d-mx-unusable.sec.test", Policy: route.Policy{TLS: route.TLSRequired}})
	w.roots = ca.Roots // verifies mx-ta's chain for tls = "required"
	at := func(label string) string { return fmt.Sprintf("_%d._tcp.%s.sec.test.", w.port, label) }
	nexthop := func(label string) string { return fmt.Sprintf("nexthop=%s.sec.test:%d", label, w.port) }
	requireTLS := func(it *queue.Item) { it.Env.RequireTLS = true }
	optional := func(it *queue.Item) { it.Env.TLSOptional = true }
	authenticated := "tls_verified=true"
	w.run(t, []policyCase{
		{name: "dane: matching TLSA, authenticated", domain: "mx-ee-dane.example", state: queue.Sent, reply: "250", mx: "mx-ee", arrives: true,
			log: []string{"event=tls_policy", nexthop("mx-ee"), "policy=dane", "1 usable TLSA record(s) at " + at("mx-ee"), authenticated}},
		{name: "dane-only: matching TLSA, authenticated", domain: "mx-ee-only.example", state: queue.Sent, reply: "250", mx: "mx-ee", arrives: true,
			log: []string{nexthop("mx-ee"), "policy=dane", `tls=dane-only`, authenticated}},
		{name: "dane: DANE-TA chain naming the next hop", domain: "mx-ta-dane.example", state: queue.Sent, reply: "250", mx: "mx-ta", arrives: true,
			log: []string{"policy=dane", authenticated}},
		{name: "dane: mismatching TLSA defers 4.7.5, never in the clear", domain: "mx-bad-dane.example", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-bad",
			replyHas: []string{at("mx-bad") + " TLSA 3 1 1"}},
		{name: "dane-only: mismatching TLSA defers 4.7.5", domain: "mx-bad-only.example", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-bad",
			replyHas: []string{at("mx-bad") + " TLSA 3 1 1"}},
		{name: "tls = may to the same hop: no DANE", domain: "may.example", state: queue.Sent, reply: "250", mx: "mx-bad", arrives: true},
		{name: "dane: STARTTLS stripped defers, never plain text", domain: "mx-strip-dane.example", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-strip",
			replyHas: []string{"DANE (TLSA " + at("mx-strip") + ")", "STARTTLS"}},
		{name: "dane: bogus TLSA records defer", domain: "mx-bogus-dane.example", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-bogus",
			replyHas: []string{"DANE: TLSA lookup for " + at("mx-bogus") + " failed"}},
		{name: "dane: no TLSA records, delivered as may", domain: "mx-notlsa-dane.example", state: queue.Sent, reply: "250", mx: "mx-notlsa", arrives: true,
			log: []string{nexthop("mx-notlsa"), "policy=opportunistic", "no TLSA records at " + at("mx-notlsa")}},
		{name: "dane-only: no TLSA records defers 4.7.5", domain: "mx-notlsa-only.example", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-notlsa",
			replyHas: []string{`tls = "dane-only"`, "no TLSA records at " + at("mx-notlsa")}},
		{name: "dane: unsigned hop, delivered as may", domain: "mx-plain-dane.example", state: queue.Sent, reply: "250", mx: "mx-plain", arrives: true,
			log: []string{"address records of mx-plain.plain.test are not DNSSEC-signed"}},
		{name: "dane-only: unsigned hop defers", domain: "mx-plain-only.example", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-plain",
			replyHas: []string{"address records of mx-plain.plain.test are not DNSSEC-signed"}},
		{name: "dane: only unusable TLSA records, TLS mandatory", domain: "mx-unusable-dane.example", state: queue.Sent, reply: "250", mx: "mx-unusable", arrives: true,
			log: []string{"policy=encrypt"}},
		{name: "dane-only: only unusable TLSA records defers", domain: "mx-unusable-only.example", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-unusable",
			replyHas: []string{"all unusable"}},
		{name: "dane-only: next hop by MX, secure MX RRset", domain: "mx-secure.example", state: queue.Sent, reply: "250", mx: "mx-ee", arrives: true,
			log: []string{nexthop("mx-ee"), "policy=dane", "at " + at("mx-ee"), authenticated}},
		{name: "dane-only: next hop by MX, unsigned MX RRset defers", domain: "mx-insecure.example", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-plain",
			replyHas: []string{"MX records of d-mx-plain.plain.test are not DNSSEC-signed"}},
		{name: "dane-only: the next hop DANE authenticates is used", domain: "second.example", state: queue.Sent, reply: "250", mx: "mx-ee", arrives: true,
			log: []string{nexthop("mx-notlsa"), `not used: tls = \"dane-only\"`, nexthop("mx-ee")}},
		{name: "REQUIRETLS to a DANE next hop offering it", domain: "mx-rtls-dane.example", mod: requireTLS, state: queue.Sent, reply: "250",
			mx: "mx-rtls", arrives: true, mailLine: "REQUIRETLS"},
		{name: "REQUIRETLS to a dane next hop without TLSA fails 5.7.30", domain: "mx-notlsa-dane.example", mod: requireTLS, state: queue.Failed,
			reply: "550 5.7.30", mx: "mx-notlsa", replyHas: []string{"no TLSA records"}},
		{name: "TLS-Required: No waives dane", domain: "mx-bad-dane.example", mod: optional, state: queue.Sent, reply: "250", mx: "mx-bad", arrives: true,
			log: []string{"TLS-Required: No (RFC 8689 §5) waives dane"}},
		{name: "TLS-Required: No does not waive dane-only", domain: "mx-bad-only.example", mod: optional, state: queue.Deferred, reply: "451 4.7.5", mx: "mx-bad"},
		{name: "dane-only for MX delivery: a DANE MX host", domain: "d-mx-ee.sec.test", state: queue.Sent, reply: "250", mx: "mx-ee", arrives: true,
			log: []string{"mx=mx-ee.sec.test", "policy=dane", "_25._tcp.mx-ee.sec.test."}},
		{name: "dane-only for MX delivery: an MX host without TLSA defers", domain: "d-mx-notlsa.sec.test", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-notlsa",
			replyHas: []string{`tls = "dane-only"`, "no TLSA records at _25._tcp.mx-notlsa.sec.test."}},
		{name: "required for MX delivery: a verified chain", domain: "d-mx-ta.sec.test", state: queue.Sent, reply: "250", mx: "mx-ta", arrives: true,
			log: []string{authenticated}},
		{name: "required for MX delivery: an opportunistic MX host's unverified certificate defers", domain: "d-mx-plain.plain.test",
			state: queue.Deferred, reply: "451 4.7.5", mx: "mx-plain", replyHas: []string{"certificate"}},
		{name: "required for MX delivery: unusable TLSA records do not waive verification", domain: "d-mx-unusable.sec.test",
			state: queue.Deferred, reply: "451 4.7.5", mx: "mx-unusable", replyHas: []string{"certificate"}},
	})

	// The next hop's TLSA records are the relay's choice, not a policy
	// of the recipient domain: no TLS report (RFC 8460) counts them.
	_, _, eng := w.deliverWith(t, "R1", "mx-ee-dane.example", nil)
	for _, typ := range []string{tlspolicy.PolicyTypeTLSA, tlspolicy.PolicyTypeNoPolicy} {
		if c := eng.Counts("mx-ee-dane.example", typ); c.Success != 0 || len(c.Failures) != 0 {
			t.Errorf("TLS report counts for the recipient domain of a next hop, %s: %+v", typ, c)
		}
	}
}
