package access

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Errors from NormalizeDomain and ParseAddressLiteral.
var (
	ErrBadDomain      = errors.New("access: bad domain")
	ErrAddressLiteral = errors.New("access: address literal, not a domain name")
)

// maxDomainLength is the longest domain name in octets without the trailing
// dot (RFC 1035 §2.3.4 allows 255 octets on the wire; RFC 5321 §4.5.3.1.2).
const maxDomainLength = 253

// maxLabelLength is the longest label in octets (RFC 1035 §2.3.4).
const maxLabelLength = 63

// NormalizeDomain returns the canonical form of a domain name as Ferry
// compares it: lower case, without a trailing dot, with every Unicode label
// (U-label) converted to its ASCII form (A-label, "xn--…", RFC 5890 §2.3.2.1),
// so "Bücher.example.", "BÜCHER.EXAMPLE" and "xn--bcher-kva.example" are all
// "xn--bcher-kva.example". The mapping and validation are UTS #46 lookup
// processing as golang.org/x/net/idna implements it; an A-label must be
// valid, so two spellings of one name cannot compare unequal.
//
// After mapping, every label must follow the LDH rule of RFC 5321 §4.1.2
// (letters, digits, inner hyphens): an underscore, an empty label ("a..b"),
// a label over 63 octets, a name over 253 octets, and an all-numeric last
// label (RFC 3696 §2: "1.2.3.4" is not a domain name) are errors wrapping
// ErrBadDomain. A name in brackets is an address literal and yields
// ErrAddressLiteral; see ParseAddressLiteral.
func NormalizeDomain(domain string) (string, error) {
	if strings.HasPrefix(domain, "[") {
		return "", ErrAddressLiteral
	}
	if !utf8.ValidString(domain) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrBadDomain)
	}
	a, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadDomain, err)
	}
	a = strings.TrimSuffix(a, ".")
	if a == "" {
		return "", fmt.Errorf("%w: empty", ErrBadDomain)
	}
	labels := strings.Split(a, ".")
	for _, label := range labels {
		if err := checkLDH(label); err != nil {
			return "", fmt.Errorf("%w: label %q: %v", ErrBadDomain, label, err)
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "", fmt.Errorf("%w: numeric top-level label", ErrBadDomain)
	}
	if len(a) > maxDomainLength {
		return "", fmt.Errorf("%w: longer than %d octets", ErrBadDomain, maxDomainLength)
	}
	return a, nil
}

// checkLDH checks an ASCII label against RFC 5321 §4.1.2's sub-domain rule:
// Let-dig [Ldh-str].
func checkLDH(label string) error {
	if label == "" {
		return errors.New("empty label")
	}
	if len(label) > maxLabelLength {
		return fmt.Errorf("longer than %d octets", maxLabelLength)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return errors.New("leading or trailing hyphen")
	}
	return nil
}

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

// allDigits reports whether s is non-empty and all ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
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
