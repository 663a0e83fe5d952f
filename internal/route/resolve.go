package route

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Resolver is the DNS Ferry needs for routing. *net.Resolver implements it.
type Resolver interface {
	// LookupMX returns the MX records of name.
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	// LookupNetIP returns the addresses of host; network is "ip".
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// SecureResolver is a Resolver that also says whether an answer was
// DNSSEC-validated (RFC 7672 §2.2 needs it for DANE). When the Table's
// resolver implements it, Targets carry the status.
type SecureResolver interface {
	Resolver
	// LookupMXSecure is LookupMX, and whether the MX RRset was secure.
	LookupMXSecure(ctx context.Context, name string) ([]*net.MX, bool, error)
	// LookupNetIPSecure is LookupNetIP for "ip", and whether the address
	// records were secure.
	LookupNetIPSecure(ctx context.Context, host string) ([]netip.Addr, bool, error)
}

// Target is one address to connect to.
type Target struct {
	// Host is the host name the address belongs to (the MX host or the
	// configured next hop), used for TLS server name checks and logs.
	Host string
	// MX is set when Host came from an MX lookup (or is the domain itself
	// for lack of MX records, RFC 5321 §5.1).
	MX bool
	// MXSecure is set when the MX RRset (or its secure denial) was
	// DNSSEC-validated; AddrSecure when Host's address records were.
	MXSecure, AddrSecure bool
	// MXDomain, set with MX, is the name whose MX records gave Host: the
	// recipient domain, or a configured next hop looked up by MX.
	MXDomain string
	// IP is the address.
	IP netip.Addr
	// Port is the TCP port.
	Port int
}

// Addr returns "ip:port" for net.Dial.
func (t Target) Addr() string { return net.JoinHostPort(t.IP.String(), strconv.Itoa(t.Port)) }

// HopKey returns "host:port", the key of the hop-capability cache and the
// connection pool.
func (t Target) HopKey() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// String formats the target as Postfix writes a relay, "host[ip]:port",
// with the address once ("[ip]:port") when the host is the address itself
// (an IP next hop or an address literal such as "[127.0.0.1]").
func (t Target) String() string {
	ip := t.IP.String()
	if host := strings.TrimSuffix(strings.TrimPrefix(t.Host, "["), "]"); host == ip || strings.EqualFold(host, "IPv6:"+ip) {
		return "[" + ip + "]:" + strconv.Itoa(t.Port)
	}
	return t.Host + "[" + ip + "]:" + strconv.Itoa(t.Port)
}

// Error is a routing failure with the SMTP reply the recipients get:
// permanent (5xx) for a null MX or a domain that does not exist, transient
// (4xx) for DNS trouble.
type Error struct {
	Reply smtp.Reply
	Err   error
}

// Error returns the reply and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return "route: " + e.Reply.String() + ": " + e.Err.Error()
	}
	return "route: " + e.Reply.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Replies used for routing failures follow.

// ReplyNullMX returns the reply for this case: the domain publishes a null MX and accepts no mail
// (RFC 7505 §3, enhanced code from RFC 7505 §4.2).
func ReplyNullMX() smtp.Reply {
	return smtp.NewReply(556, "5.1.10", "Recipient address has null MX")
}

// ReplyHostNotFound returns the reply for this case: neither MX nor address records exist
// (RFC 3463 X.4.4 "Unable to route").
func ReplyHostNotFound() smtp.Reply {
	return smtp.NewReply(550, "5.4.4", "Host or domain name not found")
}

// ReplyDNSFailure returns the reply for this case: DNS lookup failed temporarily (RFC 3463 X.4.3).
func ReplyDNSFailure() smtp.Reply {
	return smtp.NewReply(451, "4.4.3", "Host or domain name lookup failed temporarily")
}

// ReplyNextHopNotFound returns the reply for this case: a configured next hop has no address; the
// configuration is wrong, so mail waits rather than bounces.
func ReplyNextHopNotFound() smtp.Reply {
	return smtp.NewReply(451, "4.4.4", "Configured next hop not found")
}

// Resolve returns the addresses to try, in order, for mail to domain over
// route r. For a direct route it looks up domain's MX records; for a
// configured next hop it looks up the hop's MX records unless the hop was
// written "[host]", falling back to the host's own addresses when there is
// no MX (RFC 5321 §5.1). A failure is an *Error carrying the reply.
func (t *Table) Resolve(ctx context.Context, r Route, domain string) ([]Target, error) {
	if r.Direct() {
		if lit, ok := addressLiteral(domain); ok {
			return []Target{{Host: domain, IP: lit, Port: DefaultPort}}, nil
		}
		port := t.mxPort
		if port == 0 {
			port = DefaultPort
		}
		targets, err := t.resolveMX(ctx, strings.TrimSuffix(domain, "."), port)
		if err != nil {
			return nil, err
		}
		return targets, nil
	}
	var out []Target
	var firstErr error
	for _, h := range r.Hops {
		var targets []Target
		var err error
		if h.NoMX {
			targets, err = t.resolveHost(ctx, h.Host, h.Port)
		} else {
			targets, err = t.resolveMX(ctx, h.Host, h.Port)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, targets...)
	}
	if len(out) > 0 {
		return out, nil
	}
	// A configured hop that does not exist is a configuration error:
	// defer, so fixing the configuration delivers the mail.
	var re *Error
	if errors.As(firstErr, &re) && re.Reply.Permanent() {
		return nil, &Error{Reply: ReplyNextHopNotFound(), Err: firstErr}
	}
	if firstErr == nil {
		firstErr = &Error{Reply: ReplyNextHopNotFound(), Err: errors.New("route has no next hops")}
	}
	return nil, firstErr
}

// resolveMX implements RFC 5321 §5.1: MX hosts by preference, equal
// preferences shuffled, the name's own addresses when it has no MX, and
// RFC 7505's null MX as a permanent failure.
func (t *Table) resolveMX(ctx context.Context, name string, port int) ([]Target, error) {
	var mxs []*net.MX
	var secure bool
	var err error
	if sr, ok := t.resolver.(SecureResolver); ok {
		mxs, secure, err = sr.LookupMXSecure(ctx, name)
	} else {
		mxs, err = t.resolver.LookupMX(ctx, name)
	}
	if err != nil {
		if isNotFound(err) {
			targets, err := t.resolveHost(ctx, name, port)
			return markMX(targets, name, secure), err
		}
		return nil, &Error{Reply: ReplyDNSFailure(), Err: fmt.Errorf("MX lookup for %s: %w", name, err)}
	}
	if len(mxs) == 0 {
		targets, err := t.resolveHost(ctx, name, port)
		return markMX(targets, name, secure), err
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, &Error{Reply: ReplyNullMX(), Err: fmt.Errorf("%s publishes a null MX", name)}
	}
	sorted := make([]*net.MX, 0, len(mxs))
	for _, mx := range mxs {
		if mx.Host == "." || mx.Host == "" {
			continue // a null MX mixed with others is ignored (RFC 7505 §3)
		}
		sorted = append(sorted, mx)
	}
	slices.SortStableFunc(sorted, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	shuffle := t.shuffle
	if shuffle == nil {
		shuffle = rand.Shuffle
	}
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].Pref == sorted[i].Pref {
			j++
		}
		if j-i > 1 {
			group := sorted[i:j]
			shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
		}
		i = j
	}
	var out []Target
	var firstErr error
	for _, mx := range sorted {
		host := strings.TrimSuffix(mx.Host, ".")
		targets, err := t.resolveHost(ctx, host, port)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, markMX(targets, name, secure)...)
	}
	if len(out) == 0 {
		return nil, firstErr
	}
	return out, nil
}

// markMX marks targets as reached through an MX lookup of name whose RRset
// was secure or not, and returns them.
func markMX(targets []Target, name string, secure bool) []Target {
	for i := range targets {
		targets[i].MX, targets[i].MXSecure, targets[i].MXDomain = true, secure, name
	}
	return targets
}

// resolveHost returns the addresses of one host name or IP address.
func (t *Table) resolveHost(ctx context.Context, host string, port int) ([]Target, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []Target{{Host: host, IP: ip, Port: port}}, nil
	}
	var ips []netip.Addr
	var secure bool
	var err error
	if sr, ok := t.resolver.(SecureResolver); ok {
		ips, secure, err = sr.LookupNetIPSecure(ctx, host)
	} else {
		ips, err = t.resolver.LookupNetIP(ctx, "ip", host)
	}
	if err != nil {
		if isNotFound(err) {
			return nil, &Error{Reply: ReplyHostNotFound(), Err: fmt.Errorf("address lookup for %s: %w", host, err)}
		}
		return nil, &Error{Reply: ReplyDNSFailure(), Err: fmt.Errorf("address lookup for %s: %w", host, err)}
	}
	if len(ips) == 0 {
		return nil, &Error{Reply: ReplyHostNotFound(), Err: fmt.Errorf("address lookup for %s: no addresses", host)}
	}
	out := make([]Target, len(ips))
	for i, ip := range ips {
		out[i] = Target{Host: host, IP: ip.Unmap(), Port: port, AddrSecure: secure}
	}
	return out, nil
}

// isNotFound reports whether a DNS error says the name or record does not
// exist (as opposed to a temporary failure).
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// addressLiteral parses a domain written as an address literal, "[192.0.2.1]"
// or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3).
func addressLiteral(domain string) (netip.Addr, bool) {
	if len(domain) < 3 || domain[0] != '[' || domain[len(domain)-1] != ']' {
		return netip.Addr{}, false
	}
	s := domain[1 : len(domain)-1]
	if len(s) > 5 && strings.EqualFold(s[:5], "IPv6:") {
		s = s[5:]
	}
	ip, err := netip.ParseAddr(s)
	return ip, err == nil
}
