package access

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrBadNetwork is wrapped by ParseNetwork's errors.
var ErrBadNetwork = errors.New("access: bad network")

// DefaultRelayNetworks returns the networks allowed to relay when none are
// configured: the loopback networks 127.0.0.0/8 and ::1/128, as Postfix's
// mynetworks_style=host comes close to. A new slice is returned each call.
func DefaultRelayNetworks() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}
}

// ParseNetwork parses a network as written in the config file or given to
// `ferry serve --relay-network`: a CIDR prefix ("192.0.2.0/24",
// "2001:db8::/32") or a single address ("192.0.2.7", "::1"), which stands for
// its /32 or /128. Postfix's bracketed IPv6 form ("[2001:db8::]/32") is
// accepted too. A prefix with host bits set ("10.1.2.3/8") is an error, since
// it is usually a typo for a narrower network; so are zones. An IPv4-mapped
// IPv6 prefix ("::ffff:10.0.0.0/104") is converted to its IPv4 form.
func ParseNetwork(s string) (netip.Prefix, error) {
	in := strings.TrimSpace(s)
	if strings.HasPrefix(in, "[") {
		end := strings.IndexByte(in, ']')
		if end < 0 {
			return netip.Prefix{}, fmt.Errorf("%w %q: missing ']'", ErrBadNetwork, s)
		}
		in = in[1:end] + in[end+1:]
	}
	if strings.Contains(in, "%") {
		return netip.Prefix{}, fmt.Errorf("%w %q: zones are not allowed", ErrBadNetwork, s)
	}
	if !strings.Contains(in, "/") {
		ip, err := netip.ParseAddr(in)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w %q: want an address or CIDR prefix: %w", ErrBadNetwork, s, err)
		}
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(in)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w %q: want an address or CIDR prefix: %w", ErrBadNetwork, s, err)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%w %q: host bits set; did you mean %s?", ErrBadNetwork, s, p.Masked())
	}
	return unmapPrefix(p), nil
}

// unmapPrefix converts an IPv4-mapped IPv6 prefix of at least 96 bits to the
// IPv4 prefix it covers, and returns any other prefix masked.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// clientAddr returns the form of a client address the network tables are
// matched against: IPv4-mapped IPv6 unmapped, zone removed (netip.Prefix
// never contains an address with a zone).
func clientAddr(ip netip.Addr) netip.Addr {
	return ip.Unmap().WithZone("")
}

// netSet is a list of prefixes, matched linearly; relay tables are short.
type netSet []netip.Prefix

// newNetSet validates and normalizes prefixes; what names the field in errors.
func newNetSet(what string, prefixes []netip.Prefix) (netSet, error) {
	set := make(netSet, 0, len(prefixes))
	for i, p := range prefixes {
		if !p.IsValid() {
			return nil, fmt.Errorf("%s[%d]: %w: invalid prefix", what, i, ErrBadNetwork)
		}
		if p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%s[%d] %s: %w: zones are not allowed", what, i, p, ErrBadNetwork)
		}
		set = append(set, unmapPrefix(p))
	}
	return set, nil
}

// match returns the first prefix holding ip (already passed through
// clientAddr).
func (s netSet) match(ip netip.Addr) (netip.Prefix, bool) {
	if !ip.IsValid() {
		return netip.Prefix{}, false
	}
	for _, p := range s {
		if p.Contains(ip) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
