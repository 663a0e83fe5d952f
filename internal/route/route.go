// Package route decides where mail for a recipient domain goes: per-domain
// routes (exact domain, ".example.com" for subdomains, "*" for the rest), a
// default smart host, or direct delivery to the domain's MX hosts
// (RFC 5321 §5.1), and the per-route delivery policy (8-bit handling, TLS,
// authentication, EHLO name, discarded keywords, concurrency).
//
// DNS is reached only through the Resolver interface, so tests never touch
// real DNS.
package route

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ferrymta/ferry/internal/smtp"
)

// DefaultPort is the SMTP port used when a next hop names none (RFC 5321
// §4.5.4.2 relays use port 25).
const DefaultPort = 25

// NextHop is one configured next hop: a host (looked up by MX unless NoMX)
// and a port.
type NextHop struct {
	// Host is a domain name or an IP address, without brackets.
	Host string
	// Port is the TCP port.
	Port int
	// NoMX is set for the "[host]:port" form: connect to the host's
	// addresses and skip the MX lookup (Postfix's convention).
	NoMX bool
}

// String formats the next hop as it is written in a route, e.g.
// "[mail.example]:587" or "example.com:25".
func (h NextHop) String() string {
	host := h.Host
	if h.NoMX {
		host = "[" + host + "]"
	} else if strings.Contains(host, ":") {
		// An IPv6 address without brackets cannot carry a port; the
		// parser always sets NoMX for IP addresses.
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(h.Port)
}

// Action says what delivery does when a message must be changed for a next
// hop: convert it or bounce it; for DKIM-signed mail also convert it and
// add an ARC set (RFC 8617).
type Action uint8

// Actions. The zero value converts. ARC is for DKIMSigned only.
const (
	Convert Action = iota
	Bounce
	ARC
)

// String returns "convert", "bounce" or "arc".
func (a Action) String() string {
	switch a {
	case Bounce:
		return "bounce"
	case ARC:
		return "arc"
	}
	return "convert"
}

// TLSMode is a route's STARTTLS policy.
type TLSMode uint8

// TLS modes. The zero value is TLSMay: opportunistic STARTTLS without
// certificate verification (RFC 7435).
const (
	TLSMay TLSMode = iota
	TLSNone
	TLSRequired
	// TLSDANE authenticates each next hop by its DNSSEC-validated TLSA
	// records (RFC 7672) where it publishes usable ones, and is TLSMay
	// where DANE does not apply (Postfix's "dane" level).
	TLSDANE
	// TLSDANEOnly is TLSDANE without the fallback: a next hop DANE does
	// not authenticate is not used (Postfix's "dane-only" level).
	TLSDANEOnly
)

// String returns "may", "none", "required", "dane" or "dane-only".
func (m TLSMode) String() string {
	switch m {
	case TLSNone:
		return "none"
	case TLSRequired:
		return "required"
	case TLSDANE:
		return "dane"
	case TLSDANEOnly:
		return "dane-only"
	default:
		return "may"
	}
}

// DANE reports whether the mode is "dane" or "dane-only": the TLS policy
// of each next hop comes from its TLSA records.
func (m TLSMode) DANE() bool { return m == TLSDANE || m == TLSDANEOnly }

// Credentials are the SASL username and password for a smart host.
type Credentials struct {
	Username string
	Password string
}

// Policy is how delivery treats one route's next hops. The zero value is the
// default policy: convert 8-bit and DKIM-signed mail, opportunistic TLS, no
// authentication, the global EHLO name, and the global concurrency limits.
type Policy struct {
	// EightBit says whether content the hop cannot take as it is (an 8-bit
	// body without 8BITMIME, a binary body without BINARYMIME) is
	// converted or bounced with 5.6.3 (RFC 6152 §3).
	EightBit Action
	// DKIMSigned says whether a DKIM-signed message that needs conversion
	// is converted (breaking the signature, RFC 6376 §5.3; Ferry signs
	// the converted message where it holds a key), bounced, or converted
	// and ARC-sealed (ARC).
	DKIMSigned Action
	// DKIMKey names the signing key for this route's mail (a key's domain
	// or selector._domainkey.domain); empty: the key of the From domain.
	DKIMKey string
	// TLS is the STARTTLS policy.
	TLS TLSMode
	// Auth holds credentials for AUTH; nil means no authentication.
	Auth *Credentials
	// EHLOName overrides the global EHLO name when not empty.
	EHLOName string
	// DiscardKeywords are EHLO keywords (upper case) ignored when the hop
	// offers them, like Postfix's smtp_discard_ehlo_keywords.
	DiscardKeywords []string
	// MaxConnections limits simultaneous connections to one next hop of
	// this route; 0 means the global default.
	MaxConnections int
	// MaxMessagesPerConnection limits how many messages one connection
	// carries; 0 means the global default.
	MaxMessagesPerConnection int
}

// Route is one entry of the routing table, or the direct-delivery route
// Lookup returns when no entry matches.
type Route struct {
	// Pattern is "example.com" (that domain), ".example.com" (its
	// subdomains), "*" (every other domain), or "" for direct delivery.
	Pattern string
	// Hops are the next hops tried in order; empty means direct MX
	// delivery to the recipient domain.
	Hops []NextHop
	// Policy is the delivery policy for this route.
	Policy Policy
}

// Direct reports whether the route delivers straight to the recipient
// domain's MX hosts.
func (r Route) Direct() bool { return len(r.Hops) == 0 }

// String formats the route as "pattern=hop,hop" or "direct" for logs.
func (r Route) String() string {
	if r.Direct() {
		if r.Pattern == "" {
			return "direct"
		}
		return r.Pattern + "=direct"
	}
	hops := make([]string, len(r.Hops))
	for i, h := range r.Hops {
		hops[i] = h.String()
	}
	return r.Pattern + "=" + strings.Join(hops, ",")
}

// Table maps recipient domains to routes. It is safe for concurrent use
// once built; it is never modified after NewTable.
type Table struct {
	exact      map[string]Route
	subdomains map[string]Route // keyed by the parent domain without the dot
	wildcard   *Route
	direct     Route
	resolver   Resolver
	shuffle    func(n int, swap func(i, j int))
	mxPort     int
}

// Options configure a Table.
type Options struct {
	// Resolver answers DNS questions; nil means net.DefaultResolver.
	Resolver Resolver
	// DefaultPolicy applies to direct MX delivery (no route matched).
	DefaultPolicy Policy
	// SmartHost, when not empty, is the default next hop list for domains
	// no route matches; it is the same as a "*" route and conflicts with
	// one.
	SmartHost []NextHop
	// Shuffle permutes MX hosts of equal preference (RFC 5321 §5.1); nil
	// means math/rand/v2's Shuffle. Tests pass a deterministic one.
	Shuffle func(n int, swap func(i, j int))
	// MXPort is the port direct delivery dials at MX hosts; 0 means 25.
	// It is a test knob: tests run their MX hosts on loopback ports.
	MXPort int
}

// NewTable builds a routing table from routes. A pattern may appear only
// once; patterns are matched case-insensitively.
func NewTable(opts Options, routes ...Route) (*Table, error) {
	t := &Table{
		exact:      make(map[string]Route),
		subdomains: make(map[string]Route),
		direct:     Route{Policy: opts.DefaultPolicy},
		resolver:   opts.Resolver,
		shuffle:    opts.Shuffle,
		mxPort:     opts.MXPort,
	}
	if t.resolver == nil {
		t.resolver = net.DefaultResolver
	}
	if len(opts.SmartHost) > 0 {
		routes = append(routes, Route{Pattern: "*", Hops: opts.SmartHost, Policy: opts.DefaultPolicy})
	}
	for _, r := range routes {
		p := strings.ToLower(strings.TrimSpace(r.Pattern))
		r.Pattern = p
		switch {
		case p == "*":
			if t.wildcard != nil {
				return nil, fmt.Errorf("route: more than one \"*\" route (or a smart host and a \"*\" route)")
			}
			rc := r
			t.wildcard = &rc
		case strings.HasPrefix(p, "."):
			parent := smtp.DomainKey(p[1:])
			if err := checkDomain(parent); err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Pattern, err)
			}
			if _, dup := t.subdomains[parent]; dup {
				return nil, fmt.Errorf("route %q: pattern appears twice", r.Pattern)
			}
			t.subdomains[parent] = r
		default:
			d := smtp.DomainKey(p)
			if err := checkDomain(d); err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Pattern, err)
			}
			if _, dup := t.exact[d]; dup {
				return nil, fmt.Errorf("route %q: pattern appears twice", r.Pattern)
			}
			t.exact[d] = r
		}
		for _, h := range r.Hops {
			if h.Host == "" || h.Port <= 0 || h.Port > 65535 {
				return nil, fmt.Errorf("route %q: bad next hop %q", r.Pattern, h.String())
			}
		}
		if h, ok := AddressHop(r.Hops); ok && r.Policy.TLS.DANE() {
			return nil, fmt.Errorf("route %q: tls = %q needs next hops named by host name (TLSA records are found at _PORT._tcp.HOST, RFC 7672 §2.2), and %s is an IP address", r.Pattern, r.Policy.TLS, h)
		}
	}
	return t, nil
}

// AddressHop returns the first of hops written as an IP address. Such a
// hop cannot have tls = "dane" or "dane-only": TLSA records are found by
// the next hop's name (RFC 7672 §2.2, "_PORT._tcp.HOST").
func AddressHop(hops []NextHop) (NextHop, bool) {
	for _, h := range hops {
		if _, err := netip.ParseAddr(h.Host); err == nil {
			return h, true
		}
	}
	return NextHop{}, false
}

// Lookup returns the route for a recipient domain: an exact match first,
// then the longest matching ".parent" pattern, then "*", else direct MX
// delivery with the default policy. Patterns and domain are compared in
// smtp.DomainKey form, the one relay decisions and the queue use, so every
// spelling of a name (U-label or A-label, case, ideographic or full-width
// dots and letters, a trailing dot) finds the same route.
func (t *Table) Lookup(domain string) Route {
	d := smtp.DomainKey(domain)
	if r, ok := t.exact[d]; ok {
		return r
	}
	// Walk up the labels: for a.b.example.com try b.example.com,
	// example.com, com; the first hit is the longest match.
	for rest := d; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		if r, ok := t.subdomains[rest]; ok {
			return r
		}
	}
	if t.wildcard != nil {
		return *t.wildcard
	}
	return t.direct
}

// checkDomain rejects empty names, empty labels and characters that cannot
// appear in a domain pattern.
func checkDomain(d string) error {
	if d == "" {
		return fmt.Errorf("empty domain")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return fmt.Errorf("empty label in %q", d)
		}
	}
	if strings.ContainsAny(d, " \t=,[]@") {
		return fmt.Errorf("invalid character in %q", d)
	}
	return nil
}
