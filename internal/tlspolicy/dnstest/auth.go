// Package dnstest runs the DNS of the TLS policy tests on loopback: an
// in-process authoritative server (miekg/dns) for test zones, zone signing
// with ldns-signzone, and a private unbound validating resolver with a
// trust anchor for the signed zone. Nothing here talks beyond 127.0.0.1.
package dnstest

import (
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
	"github.com/miekg/dns"
)

// Auth is an in-process authoritative DNS server for test zones, on UDP
// and TCP at the same loopback address. It answers from the zones'
// records, with their RRSIG and NSEC records when the query sets DO, so a
// validating resolver can prove answers and denials (RFC 4035 §3.1).
type Auth struct {
	// Addr is "127.0.0.1:port".
	Addr  string
	mu    sync.Mutex
	zones []*zone
}

type zone struct {
	origin string
	rrs    map[string]map[uint16][]dns.RR // owner → type → records
	sigs   map[string]map[uint16][]dns.RR // owner → covered type → RRSIGs
	nsecs  []*dns.NSEC                    // canonical order
}

// StartAuth starts an authoritative server for zones (zone file texts
// with $ORIGIN) and stops it when the test ends.
func StartAuth(t testing.TB, zones ...string) *Auth {
	t.Helper()
	a := &Auth{}
	for _, z := range zones {
		a.AddZone(t, z)
	}
	pc, ln := testrelay.ListenUDPTCP(t)
	a.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: a}
	tcp := &dns.Server{Listener: ln, Handler: a}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return a
}

// AddZone adds (or replaces) a zone from zone file text.
func (a *Auth) AddZone(t testing.TB, text string) {
	t.Helper()
	z := &zone{rrs: map[string]map[uint16][]dns.RR{}, sigs: map[string]map[uint16][]dns.RR{}}
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		owner := strings.ToLower(h.Name)
		switch v := rr.(type) {
		case *dns.SOA:
			z.origin = owner
		case *dns.RRSIG:
			add(z.sigs, owner, v.TypeCovered, rr)
			continue
		case *dns.NSEC:
			z.nsecs = append(z.nsecs, v)
		}
		add(z.rrs, owner, h.Rrtype, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("dnstest: zone: %v", err)
	}
	if z.origin == "" {
		t.Fatal("dnstest: zone without SOA")
	}
	sort.Slice(z.nsecs, func(i, j int) bool { return canonicalLess(z.nsecs[i].Hdr.Name, z.nsecs[j].Hdr.Name) })
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, old := range a.zones {
		if old.origin == z.origin {
			a.zones[i] = z
			return
		}
	}
	a.zones = append(a.zones, z)
}

func add(m map[string]map[uint16][]dns.RR, owner string, typ uint16, rr dns.RR) {
	if m[owner] == nil {
		m[owner] = map[uint16][]dns.RR{}
	}
	m[owner][typ] = append(m[owner][typ], rr)
}

// ServeDNS answers one query.
func (a *Auth) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
		m.SetEdns0(1232, do)
	}
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	name, qtype := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
	a.mu.Lock()
	z := a.find(name)
	a.mu.Unlock()
	if z == nil {
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	z.answer(m, name, qtype, do)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := 512
		if opt := q.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// find returns the zone with the longest origin that name is in.
func (a *Auth) find(name string) *zone {
	var best *zone
	for _, z := range a.zones {
		if dns.IsSubDomain(z.origin, name) && (best == nil || len(z.origin) > len(best.origin)) {
			best = z
		}
	}
	return best
}

func (z *zone) withSigs(rrs []dns.RR, owner string, typ uint16, do bool) []dns.RR {
	out := append([]dns.RR(nil), rrs...)
	if do {
		out = append(out, z.sigs[owner][typ]...)
	}
	return out
}

// answer fills m: the records, a CNAME, or a denial with the NSEC records
// that prove it (RFC 4035 §3.1.3).
func (z *zone) answer(m *dns.Msg, name string, qtype uint16, do bool) {
	if set, ok := z.rrs[name]; ok {
		if rrs := set[qtype]; len(rrs) > 0 {
			m.Answer = z.withSigs(rrs, name, qtype, do)
			return
		}
		if c := set[dns.TypeCNAME]; len(c) > 0 && qtype != dns.TypeCNAME {
			m.Answer = z.withSigs(c, name, dns.TypeCNAME, do)
			target := strings.ToLower(c[0].(*dns.CNAME).Target)
			if dns.IsSubDomain(z.origin, target) {
				if rrs := z.rrs[target][qtype]; len(rrs) > 0 {
					m.Answer = append(m.Answer, z.withSigs(rrs, target, qtype, do)...)
				}
			}
			return
		}
		z.deny(m, name, do, false) // NODATA
		return
	}
	for owner := range z.rrs {
		if dns.IsSubDomain(name, owner) {
			z.deny(m, name, do, false) // an empty non-terminal: NODATA
			return
		}
	}
	m.Rcode = dns.RcodeNameError
	z.deny(m, name, do, true)
}

// deny adds the SOA and, for DO queries, the NSEC records of a denial.
func (z *zone) deny(m *dns.Msg, name string, do, nx bool) {
	m.Ns = z.withSigs(z.rrs[z.origin][dns.TypeSOA], z.origin, dns.TypeSOA, do)
	if !do || len(z.nsecs) == 0 {
		return
	}
	seen := map[string]bool{}
	addNSEC := func(n *dns.NSEC) {
		if n == nil || seen[strings.ToLower(n.Hdr.Name)] {
			return
		}
		owner := strings.ToLower(n.Hdr.Name)
		seen[owner] = true
		m.Ns = append(m.Ns, n)
		m.Ns = append(m.Ns, z.sigs[owner][dns.TypeNSEC]...)
	}
	addNSEC(z.covering(name))
	if nx {
		// The closest encloser's wildcard does not exist either.
		ce := name
		for {
			labels := dns.SplitDomainName(ce)
			if len(labels) == 0 {
				break
			}
			ce = dns.Fqdn(strings.Join(labels[1:], "."))
			if _, ok := z.rrs[ce]; ok || ce == z.origin {
				break
			}
		}
		addNSEC(z.covering("*." + ce))
	}
}

// covering returns the NSEC record whose owner is name or precedes it in
// canonical order with name before its next name (RFC 4034 §6.1).
func (z *zone) covering(name string) *dns.NSEC {
	var best *dns.NSEC
	for _, n := range z.nsecs {
		if strings.EqualFold(n.Hdr.Name, name) || canonicalLess(n.Hdr.Name, name) {
			best = n
		}
	}
	if best == nil && len(z.nsecs) > 0 {
		best = z.nsecs[len(z.nsecs)-1] // the last one wraps around to the apex
	}
	return best
}

// canonicalLess orders names as RFC 4034 §6.1 does: label by label from
// the right, case-insensitively, as octet strings.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; ; i, j = i-1, j-1 {
		switch {
		case i < 0 && j < 0:
			return false
		case i < 0:
			return true
		case j < 0:
			return false
		}
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
}
