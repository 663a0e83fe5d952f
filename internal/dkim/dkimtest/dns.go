// Package dkimtest provides what DKIM and ARC tests need: a real
// authoritative DNS server on loopback serving key records, and access to
// the independent verifier, dkimpy (Debian's python3-dkim).
package dkimtest

import (
	"strings"
	"sync"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
	"github.com/miekg/dns"
)

// DNS is an authoritative DNS server on 127.0.0.1 (UDP and TCP on one
// port) that answers TXT queries from a table.
type DNS struct {
	// Addr is "127.0.0.1:port".
	Addr string
	mu   sync.Mutex
	txt  map[string]string
	udp  *dns.Server
	tcp  *dns.Server
	// Queries counts the queries answered.
	queries int
}

// StartDNS starts a server; it stops when the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	pc, ln := testrelay.ListenUDPTCP(t)
	d := &DNS{Addr: pc.LocalAddr().String(), txt: map[string]string{}}
	d.udp = &dns.Server{PacketConn: pc, Handler: d}
	d.tcp = &dns.Server{Listener: ln, Handler: d}
	started := make(chan struct{}, 2)
	d.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	d.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go func() { _ = d.udp.ActivateAndServe() }()
	go func() { _ = d.tcp.ActivateAndServe() }()
	<-started
	<-started
	t.Cleanup(func() {
		_ = d.udp.Shutdown()
		_ = d.tcp.Shutdown()
	})
	return d
}

// SetTXT publishes value as the TXT record of name (replacing any).
func (d *DNS) SetTXT(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[dns.Fqdn(strings.ToLower(name))] = value
}

// Queries returns how many queries the server answered.
func (d *DNS) Queries() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries
}

// ServeDNS answers one query: the TXT record when known, NXDOMAIN
// otherwise, always authoritative.
func (d *DNS) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	d.mu.Lock()
	d.queries++
	for _, q := range r.Question {
		v, ok := d.txt[strings.ToLower(q.Name)]
		if !ok {
			continue
		}
		if q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: split(v),
			})
		}
	}
	known := false
	for _, q := range r.Question {
		_, ok := d.txt[strings.ToLower(q.Name)]
		known = known || ok
	}
	d.mu.Unlock()
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

// split cuts a record value into character-strings of at most 255 octets.
func split(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}
