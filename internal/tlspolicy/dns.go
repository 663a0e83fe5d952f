package tlspolicy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver is Ferry's DNS client (github.com/miekg/dns). It asks the
// configured recursive resolvers, and, for the answers whose DNSSEC status
// matters (MX, address and TLSA records), the validating resolver the
// operator trusts: the AD bit of its answers is the DNSSEC status (RFC 4035
// §3.2.3, RFC 6840 §5.7), as Postfix takes it. Without a validating
// resolver every answer counts as insecure and DANE is off.
//
// Resolver implements route.Resolver and route.SecureResolver.
type Resolver struct {
	servers []string // recursive resolvers, "host:port"
	dnssec  string   // validating resolver, "host:port", or ""
	timeout time.Duration
	hosts   hostsTable
}

// ResolverConfig configures a Resolver.
type ResolverConfig struct {
	// Servers are the recursive resolvers ("host" or "host:port"); empty
	// means the nameservers of /etc/resolv.conf.
	Servers []string
	// DNSSEC is the validating resolver whose AD bit is trusted ("host" or
	// "host:port"); empty means no DNSSEC status, so no DANE.
	DNSSEC string
	// Timeout bounds one exchange with one server; default 5s.
	Timeout time.Duration
	// ResolvConf is the file read when Servers is empty; default
	// "/etc/resolv.conf".
	ResolvConf string
	// HostsFile is consulted for addresses before DNS, as the system
	// resolver does; default "/etc/hosts".
	HostsFile string
}

// NewResolver returns a Resolver for cfg.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	r := &Resolver{timeout: cfg.Timeout}
	if r.timeout <= 0 {
		r.timeout = 5 * time.Second
	}
	hosts := cfg.HostsFile
	if hosts == "" {
		hosts = "/etc/hosts"
	}
	r.hosts = readHosts(hosts)
	for _, s := range cfg.Servers {
		r.servers = append(r.servers, withPort(s))
	}
	if len(r.servers) == 0 {
		file := cfg.ResolvConf
		if file == "" {
			file = "/etc/resolv.conf"
		}
		cc, err := dns.ClientConfigFromFile(file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// resolv.conf(5): without the file or a nameserver line,
			// the name server on the local machine is used.
			r.servers = []string{"127.0.0.1:53"}
		case err != nil:
			return nil, fmt.Errorf("tlspolicy: reading %s: %w", file, err)
		default:
			for _, s := range cc.Servers {
				r.servers = append(r.servers, net.JoinHostPort(s, cc.Port))
			}
			if len(r.servers) == 0 {
				r.servers = []string{"127.0.0.1:53"}
			}
		}
	}
	if cfg.DNSSEC != "" {
		r.dnssec = withPort(cfg.DNSSEC)
	}
	return r, nil
}

// withPort adds DNS's port 53 to an address that has none.
func withPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "53")
}

// DNSSEC reports whether a validating resolver is configured, that is
// whether answers can be secure and DANE can apply.
func (r *Resolver) DNSSEC() bool { return r.dnssec != "" }

// Answer is the records of one type an answer holds, and whether the
// validating resolver vouched for them (AD bit).
type Answer struct {
	// RRs are the answer records of the type asked for (a CNAME chain the
	// resolver followed is left out).
	RRs []dns.RR
	// Secure is set when the validating resolver set the AD bit.
	Secure bool
	// Name is the owner name of the records, after CNAMEs.
	Name string
}

// Query asks for name's records of type qtype. secure says whether the
// answer's DNSSEC status matters (it then goes to the validating resolver
// when one is configured). A name or record that does not exist is a
// *net.DNSError with IsNotFound, whose Answer still says whether the
// denial was secure; any other failure is a temporary *net.DNSError.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16, secure bool) (Answer, error) {
	servers := r.servers
	if secure && r.dnssec != "" {
		servers = []string{r.dnssec}
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	q.AuthenticatedData = true // RFC 6840 §5.7: ask for the AD bit
	q.SetEdns0(1232, true)     // DO: the resolver validates and answers with AD
	var lastErr error
	for _, s := range servers {
		m, err := r.exchange(ctx, q, s)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		a := Answer{Secure: secure && r.dnssec != "" && m.AuthenticatedData, Name: dns.Fqdn(name)}
		switch m.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return a, &net.DNSError{Err: "no such host", Name: name, Server: s, IsNotFound: true}
		default:
			lastErr = &net.DNSError{Err: "server answered " + dns.RcodeToString[m.Rcode], Name: name, Server: s, IsTemporary: true}
			continue
		}
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, a.Name) {
				a.Name = c.Target
				continue
			}
			if rr.Header().Rrtype == qtype {
				a.RRs = append(a.RRs, rr)
			}
		}
		if len(a.RRs) == 0 {
			return a, &net.DNSError{Err: "no " + dns.TypeToString[qtype] + " record", Name: name, Server: s, IsNotFound: true}
		}
		return a, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no DNS server")
	}
	var de *net.DNSError
	if errors.As(lastErr, &de) {
		return Answer{}, lastErr
	}
	return Answer{}, &net.DNSError{Err: lastErr.Error(), Name: name, IsTemporary: true}
}

// exchange sends q to server over UDP, and again over TCP when the answer
// is truncated (RFC 7766 §5).
func (r *Resolver) exchange(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: r.timeout}
	m, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && m.Truncated {
		c.Net = "tcp"
		m, _, err = c.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s at %s: %w", q.Question[0].Name, dns.TypeToString[q.Question[0].Qtype], server, err)
	}
	return m, nil
}

// LookupMX returns the MX records of name (route.Resolver).
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mxs, _, err := r.LookupMXSecure(ctx, name)
	return mxs, err
}

// LookupMXSecure returns the MX records of name and whether the RRset is
// DNSSEC-secure (RFC 7672 §2.2.1).
func (r *Resolver) LookupMXSecure(ctx context.Context, name string) ([]*net.MX, bool, error) {
	a, err := r.Query(ctx, name, dns.TypeMX, true)
	if err != nil {
		return nil, a.Secure, err
	}
	out := make([]*net.MX, 0, len(a.RRs))
	for _, rr := range a.RRs {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	return out, a.Secure, nil
}

// LookupNetIP returns the addresses of host (route.Resolver); network is
// "ip", "ip4" or "ip6".
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	ips, _, err := r.lookupIP(ctx, network, host)
	return ips, err
}

// LookupNetIPSecure returns the addresses of host and whether both the A
// and the AAAA answers were secure (RFC 7672 §2.2.2: TLSA records are only
// looked up for hosts whose addresses are secure).
func (r *Resolver) LookupNetIPSecure(ctx context.Context, host string) ([]netip.Addr, bool, error) {
	return r.lookupIP(ctx, "ip", host)
}

func (r *Resolver) lookupIP(ctx context.Context, network, host string) ([]netip.Addr, bool, error) {
	if ips := r.hosts.lookup(network, host); len(ips) > 0 {
		return ips, false, nil // hosts(5), before DNS; never secure
	}
	var types []uint16
	switch network {
	case "ip4":
		types = []uint16{dns.TypeA}
	case "ip6":
		types = []uint16{dns.TypeAAAA}
	default:
		types = []uint16{dns.TypeA, dns.TypeAAAA}
	}
	var out []netip.Addr
	secure := true
	var firstErr error
	found := false
	for _, t := range types {
		a, err := r.Query(ctx, host, t, true)
		secure = secure && a.Secure
		if err != nil {
			if !isNotFound(err) && firstErr == nil {
				firstErr = err
			}
			continue
		}
		found = true
		for _, rr := range a.RRs {
			switch v := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(v.A.To4()); ok {
					out = append(out, ip)
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(v.AAAA); ok {
					out = append(out, ip)
				}
			}
		}
	}
	if firstErr != nil && !found {
		return nil, false, firstErr
	}
	if !found {
		return nil, secure, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, secure && firstErr == nil, nil
}

// LookupTXT returns the TXT strings of name, each record's strings joined
// (RFC 7208 §3.3 style, as MTA-STS and TLS-RPT records are read).
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	a, err := r.Query(ctx, name, dns.TypeTXT, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(a.RRs))
	for _, rr := range a.RRs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// isNotFound reports whether err says the name or record does not exist.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
