package access

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
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
// (U-label) converted to its ASCII form (A-label, "xn--…", RFC 5890 §2.3.2.1
// and RFC 3492), so "Bücher.example.", "BÜCHER.EXAMPLE" and
// "xn--bcher-kva.example" are all "xn--bcher-kva.example".
//
// The mapping is the lookup subset of UTS #46 that needs no Unicode tables
// beyond the standard library: lower-casing where Go's case mapping and
// UTS #46 agree (see lowerLookup; other capitals are refused), the
// ideographic and full-width full stops as label separators, and full-width
// ASCII folded to ASCII.
// NFC normalization is not applied, so a decomposed label ("u" + U+0308)
// does not match its precomposed form; such a name fails closed (it matches
// no accepted domain). Context rules (RFC 5892 CONTEXTJ/CONTEXTO, so ZWJ and
// ZWNJ) and the Bidi rule are not implemented: labels that would need them
// are refused.
//
// An A-label must decode to a valid U-label and re-encode to itself, so two
// spellings of one name cannot compare unequal. ASCII labels follow the LDH
// rule of RFC 5321 §4.1.2 (letters, digits, inner hyphens); an underscore,
// an empty label ("a..b"), a label over 63 octets, a name over 253 octets, and
// an all-numeric last label (RFC 3696 §2: "1.2.3.4" is not a domain name)
// are errors wrapping ErrBadDomain. A name in brackets is an address literal
// and yields ErrAddressLiteral; see ParseAddressLiteral.
func NormalizeDomain(domain string) (string, error) {
	if strings.HasPrefix(domain, "[") {
		return "", ErrAddressLiteral
	}
	if !utf8.ValidString(domain) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrBadDomain)
	}
	mapped, err := lowerLookup(domain)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadDomain, err)
	}
	mapped = strings.TrimSuffix(mapped, ".")
	if mapped == "" {
		return "", fmt.Errorf("%w: empty", ErrBadDomain)
	}
	labels := strings.Split(mapped, ".")
	for i, label := range labels {
		a, err := normalizeLabel(label)
		if err != nil {
			return "", fmt.Errorf("%w: label %q: %v", ErrBadDomain, label, err)
		}
		labels[i] = a
	}
	if allDigits(labels[len(labels)-1]) {
		return "", fmt.Errorf("%w: numeric top-level label", ErrBadDomain)
	}
	out := strings.Join(labels, ".")
	if len(out) > maxDomainLength {
		return "", fmt.Errorf("%w: longer than %d octets", ErrBadDomain, maxDomainLength)
	}
	return out, nil
}

// mapLookup maps the characters UTS #46 maps that matter for domain
// comparison and can be mapped without tables: the ideographic full stop
// U+3002, the full-width full stop U+FF0E and the half-width ideographic full
// stop U+FF61 become '.', and full-width ASCII (U+FF01..U+FF5E) becomes
// ASCII.
func mapLookup(r rune) rune {
	switch {
	case r == '\u3002' || r == '\uFF0E' || r == '\uFF61':
		return '.'
	case r >= '\uFF01' && r <= '\uFF5E':
		return r - 0xFEE0
	}
	return r
}

// lowerLookup applies mapLookup and lower-cases s. A non-ASCII character is
// lower-cased only when its simple lower-case mapping is non-ASCII and maps
// back to it: that holds for ordinary capitals ("Ü"), where Go's mapping and
// UTS #46 agree. Characters where they may differ are refused instead: the
// dotted capital I (UTS #46: "i̇", Go: "i"), the Kelvin and Ångström signs,
// title-case digraphs ("ǅ"), the capital sharp s (UTS #46: "ss", Go: "ß"),
// and the capitals of disallowedCapital.
// Lower-casing them as Go does would merge names that are distinct in the
// DNS, so "İstanbul" could pass as "istanbul".
func lowerLookup(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		r = mapLookup(r)
		if r < utf8.RuneSelf {
			if r >= 'A' && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		if l := unicode.ToLower(r); l != r {
			if l < utf8.RuneSelf || unicode.ToUpper(l) != r || disallowedCapital(r) {
				return "", fmt.Errorf("character %U has no unambiguous lower case", r)
			}
			r = l
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}

// disallowedCapital reports whether r is one of the capitals that UTS #46
// leaves unmapped and disallowed although Go lower-cases them: their lower
// case forms entered Unicode later, and IDNA2008 keeps the older mapping
// stable (the Cyrillic palochka U+04C0, Georgian Asomtavruli U+10A0..U+10CD,
// the turned capital F U+2132, the reversed Roman numeral U+2183). The list
// was found by checking every code point against golang.org/x/net/idna.
func disallowedCapital(r rune) bool {
	return r == 0x04C0 || r >= 0x10A0 && r <= 0x10CD || r == 0x2132 || r == 0x2183
}

// normalizeLabel returns the A-label or LDH label for one lower-cased label.
func normalizeLabel(label string) (string, error) {
	if label == "" {
		return "", errors.New("empty label")
	}
	if isASCII(label) {
		if err := checkLDH(label); err != nil {
			return "", err
		}
		if strings.HasPrefix(label, "xn--") {
			if err := checkALabel(label); err != nil {
				return "", err
			}
		}
		return label, nil
	}
	if err := checkULabel(label); err != nil {
		return "", err
	}
	enc, err := punyEncode(label)
	if err != nil {
		return "", err
	}
	a := "xn--" + enc
	if len(a) > maxLabelLength {
		return "", fmt.Errorf("longer than %d octets", maxLabelLength)
	}
	return a, nil
}

// checkLDH checks an ASCII label against RFC 5321 §4.1.2's sub-domain rule:
// Let-dig [Ldh-str].
func checkLDH(label string) error {
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

// checkALabel checks that an "xn--" label decodes to a valid U-label that
// encodes back to the same A-label (RFC 5891 §5.4).
func checkALabel(label string) error {
	u, err := punyDecode(label[4:])
	if err != nil {
		return err
	}
	if isASCII(u) {
		return errors.New("A-label decodes to ASCII")
	}
	if l, err := lowerLookup(u); err != nil || l != u {
		return errors.New("A-label decodes to a label that is not in lookup form")
	}
	if err := checkULabel(u); err != nil {
		return err
	}
	back, err := punyEncode(u)
	if err != nil || back != label[4:] {
		return errors.New("A-label is not canonical")
	}
	return nil
}

// checkULabel checks the characters of a Unicode label: letters, digits,
// combining marks after a base character, and inner hyphens. Everything else
// (spaces, symbols, punctuation, controls, joiners) is refused, which is
// stricter than IDNA2008 in a few corners and never looser.
func checkULabel(label string) error {
	if label == "" {
		return errors.New("empty label")
	}
	first, _ := utf8.DecodeRuneInString(label)
	if unicode.Is(unicode.M, first) {
		return errors.New("label starts with a combining mark")
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return errors.New("leading or trailing hyphen")
	}
	for _, r := range label {
		switch {
		case r == '-', r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r < 0x80:
			return fmt.Errorf("character %q not allowed", r)
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.Is(unicode.M, r):
		default:
			return fmt.Errorf("character %U not allowed", r)
		}
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
