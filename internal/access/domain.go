package access

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Errors from NormalizeDomain and ParseAddressLiteral: internal/smtp's.
var (
	ErrBadDomain      = smtp.ErrBadDomain
	ErrAddressLiteral = smtp.ErrAddressLiteral
)

// NormalizeDomain returns the canonical form of a domain name: the one
// normalisation Ferry applies everywhere (relay decisions, routes, the
// queue's next-hop key, logs), smtp.NormalizeDomain.
func NormalizeDomain(domain string) (string, error) { return smtp.NormalizeDomain(domain) }

// ParseAddressLiteral parses an address literal as it appears after '@' in a
// path (RFC 5321 §4.1.3): "[192.0.2.1]" or "[IPv6:2001:db8::1]" (the tag is
// case-insensitive). General address literals ("[tag:content]") and zones are
// refused.
func ParseAddressLiteral(domain string) (netip.Addr, error) {
	if len(domain) < 2 || domain[0] != '[' || domain[len(domain)-1] != ']' {
		return netip.Addr{}, fmt.Errorf("%w: address literal %q not in brackets", ErrBadDomain, domain)
	}
	inner := domain[1 : len(domain)-1]
	const tag = "ipv6:"
	if len(inner) > len(tag) && strings.EqualFold(inner[:len(tag)], tag) {
		ip, err := netip.ParseAddr(inner[len(tag):])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("%w: bad IPv6 address literal %q", ErrBadDomain, domain)
		}
		return ip, nil
	}
	ip, err := netip.ParseAddr(inner)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("%w: unsupported address literal %q", ErrBadDomain, domain)
	}
	return ip, nil
}

// isASCII reports whether s holds only ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// domainSet matches normalized domains against configured entries: a name
// matches itself only, and an entry with a leading dot (".example.com")
// matches every subdomain of that name but not the name itself, as in
// Postfix's relay_domains with parent_domain_matches_subdomains off.
type domainSet struct {
	exact   map[string]struct{}
	parents []string // ".example.com" for the entry ".example.com"
}

// newDomainSet normalizes entries into a set; what names the field in errors.
func newDomainSet(what string, entries []string) (domainSet, error) {
	set := domainSet{exact: make(map[string]struct{}, len(entries))}
	for i, e := range entries {
		sub := strings.HasPrefix(e, ".")
		name := e
		if sub {
			name = e[1:]
		}
		if strings.HasPrefix(name, "*.") {
			return domainSet{}, fmt.Errorf("%s[%d] %q: write %q to match subdomains: %w", what, i, e, name[1:], ErrBadDomain)
		}
		d, err := NormalizeDomain(name)
		if err != nil {
			return domainSet{}, fmt.Errorf("%s[%d] %q: %w", what, i, e, err)
		}
		if sub {
			set.parents = append(set.parents, "."+d)
		} else {
			set.exact[d] = struct{}{}
		}
	}
	return set, nil
}

// match reports whether the normalized domain d is in the set.
func (s domainSet) match(d string) bool {
	if _, ok := s.exact[d]; ok {
		return true
	}
	for _, p := range s.parents {
		if strings.HasSuffix(d, p) {
			return true
		}
	}
	return false
}

// empty reports whether the set has no entries.
func (s domainSet) empty() bool { return len(s.exact) == 0 && len(s.parents) == 0 }
