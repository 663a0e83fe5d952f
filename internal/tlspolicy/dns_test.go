package tlspolicy

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/tlspolicy/dnstest"
	"github.com/miekg/dns"
)

const secZone = `$ORIGIN sec.test.
$TTL 300
@	SOA ns.sec.test. hostmaster.sec.test. 1 3600 600 86400 300
@	NS ns
ns	A 127.0.0.1
ee	MX 10 mx-ee
mx-ee	A 127.0.0.2
_25._tcp.mx-ee	TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000
notlsa	MX 10 mx-notlsa
mx-notlsa	A 127.0.0.3
`

const plainZone = `$ORIGIN plain.test.
$TTL 300
@	SOA ns.plain.test. hostmaster.plain.test. 1 3600 600 86400 300
@	NS ns
ns	A 127.0.0.1
insec	MX 10 mx
mx	A 127.0.0.4
_25._tcp.mx	TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000
`

// testDNS is an authoritative server with a signed and an unsigned zone
// and a real unbound validating resolver in front of it.
type testDNS struct {
	auth    *dnstest.Auth
	unbound *dnstest.Unbound
	r       *Resolver
}

func startTestDNS(t *testing.T, sec, plain string) testDNS {
	t.Helper()
	signed, anchor := dnstest.SignZone(t, "sec.test.", sec)
	auth := dnstest.StartAuth(t, signed, plain)
	ub := dnstest.StartUnbound(t, auth.Addr, []string{"sec.test.", "plain.test."}, []string{anchor})
	r, err := NewResolver(ResolverConfig{Servers: []string{auth.Addr}, DNSSEC: ub.Addr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return testDNS{auth: auth, unbound: ub, r: r}
}

// TestResolverDNSSECStatus: the AD bit of the validating resolver makes a
// signed zone's answers and denials secure, an unsigned zone's insecure;
// a tampered record is bogus, which unbound answers with SERVFAIL, a
// temporary failure.
func TestResolverDNSSECStatus(t *testing.T) {
	d := startTestDNS(t, secZone, plainZone)
	ctx := context.Background()
	mxs, secure, err := d.r.LookupMXSecure(ctx, "ee.sec.test")
	if err != nil || !secure || len(mxs) != 1 || mxs[0].Host != "mx-ee.sec.test." {
		log, _ := os.ReadFile(d.unbound.Log)
		t.Fatalf("signed MX: %v secure=%v %v (unbound log %s)", mxs, secure, err, log)
	}
	ips, secure, err := d.r.LookupNetIPSecure(ctx, "mx-ee.sec.test")
	if err != nil || !secure || len(ips) != 1 || ips[0].String() != "127.0.0.2" {
		t.Fatalf("signed A: %v secure=%v %v", ips, secure, err)
	}
	a, err := d.r.Query(ctx, "_25._tcp.mx-notlsa.sec.test", dns.TypeTLSA, true)
	if !isNotFound(err) || !a.Secure {
		t.Fatalf("secure denial of TLSA: %+v %v", a, err)
	}
	mxs, secure, err = d.r.LookupMXSecure(ctx, "insec.plain.test")
	if err != nil || secure || len(mxs) != 1 {
		t.Fatalf("unsigned MX: %v secure=%v %v", mxs, secure, err)
	}
	if _, err := d.r.LookupMX(ctx, "nonexistent.sec.test"); !isNotFound(err) {
		t.Fatalf("NXDOMAIN: %v", err)
	}

	// A record changed after signing: unbound finds it bogus.
	signed, anchor := dnstest.SignZone(t, "sec.test.", secZone)
	tampered := strings.Replace(signed, "127.0.0.2", "127.0.0.9", 1)
	auth := dnstest.StartAuth(t, tampered)
	ub := dnstest.StartUnbound(t, auth.Addr, []string{"sec.test."}, []string{anchor})
	r, err := NewResolver(ResolverConfig{Servers: []string{auth.Addr}, DNSSEC: ub.Addr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = r.LookupNetIPSecure(ctx, "mx-ee.sec.test")
	var de *net.DNSError
	if !errors.As(err, &de) || de.IsNotFound || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Fatalf("bogus A record: %v", err)
	}
}

// TestResolverWithoutDNSSEC: without a validating resolver nothing is
// secure, and resolv.conf is read when no server is named.
func TestResolverWithoutDNSSEC(t *testing.T) {
	signed, _ := dnstest.SignZone(t, "sec.test.", secZone)
	auth := dnstest.StartAuth(t, signed)
	r, err := NewResolver(ResolverConfig{Servers: []string{auth.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	_, secure, err := r.LookupMXSecure(context.Background(), "ee.sec.test")
	if err != nil || secure {
		t.Fatalf("MX without a validating resolver: secure=%v %v", secure, err)
	}
	host, _, _ := net.SplitHostPort(auth.Addr)
	conf := t.TempDir() + "/resolv.conf"
	writeFile(t, conf, "nameserver "+host+"\noptions timeout:2\n")
	r2, err := NewResolver(ResolverConfig{ResolvConf: conf})
	if err != nil || len(r2.servers) != 1 || r2.servers[0] != host+":53" {
		t.Fatalf("resolv.conf: %v %v", r2, err)
	}
	// hosts(5) comes before DNS for addresses, never secure.
	hf := t.TempDir() + "/hosts"
	writeFile(t, hf, "# comment\n192.0.2.7 relay.example relay # alias\n2001:db8::7 relay.example\nbad line\n")
	r4, err := NewResolver(ResolverConfig{Servers: []string{auth.Addr}, HostsFile: hf})
	if err != nil {
		t.Fatal(err)
	}
	ips, secure, err := r4.LookupNetIPSecure(context.Background(), "Relay.Example.")
	if err != nil || secure || len(ips) != 2 || ips[0].String() != "192.0.2.7" {
		t.Errorf("hosts file: %v %v %v", ips, secure, err)
	}
	if ips, _ := r4.LookupNetIP(context.Background(), "ip4", "relay"); len(ips) != 1 {
		t.Errorf("hosts alias, ip4: %v", ips)
	}
	// resolv.conf(5): no file means the local name server.
	if r3, err := NewResolver(ResolverConfig{ResolvConf: t.TempDir() + "/missing"}); err != nil || r3.servers[0] != "127.0.0.1:53" {
		t.Fatalf("missing resolv.conf: %v %v", r3, err)
	}
}
