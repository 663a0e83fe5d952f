package smtp

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Errors from NormalizeDomain.
var (
	ErrBadDomain      = errors.New("bad domain")
	ErrAddressLiteral = errors.New("address literal, not a domain name")
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
// ErrAddressLiteral.
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
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" { // labels are not empty here
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

// DomainKey returns the form of a domain Ferry uses as a key: for routes,
// the queue's next hops and logs. It is NormalizeDomain's result, so every
// spelling of a name (U-label or A-label, any case, ideographic or
// full-width dots, full-width letters, a trailing dot) gives the same key,
// the one relay decisions use. A name NormalizeDomain refuses (an address
// literal, say) is lower-cased, without a trailing dot.
func DomainKey(domain string) string {
	if d, err := NormalizeDomain(domain); err == nil {
		return d
	}
	return strings.TrimSuffix(strings.ToLower(domain), ".")
}
