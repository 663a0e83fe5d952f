package deliver

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/ferrymta/ferry/internal/smtp"
)

// A-label conversion (RFC 5890 §2.3.2.1) uses golang.org/x/net/idna's
// lookup profile (UTS #46 mapping, IDNA2008 validity) on each non-ASCII
// label; ASCII labels are kept exactly as they are. A label it cannot
// convert is an error, and the recipient then fails with 5.6.7 rather than
// go out damaged.

// errNotALabel is wrapped by ToALabels for domains that cannot be converted.
var errNotALabel = errors.New("domain cannot be converted to A-labels")

// ToALabels converts a domain to its ASCII form: every non-ASCII label
// becomes an A-label, ASCII labels are kept as they are. Address literals
// are returned unchanged.
func ToALabels(domain string) (string, error) {
	if isASCII(domain) || strings.HasPrefix(domain, "[") {
		return domain, nil
	}
	labels := strings.Split(domain, ".")
	for i, l := range labels {
		if isASCII(l) {
			continue
		}
		if !utf8.ValidString(l) {
			return "", fmt.Errorf("%w: %q is not UTF-8", errNotALabel, domain)
		}
		a, err := idna.Lookup.ToASCII(l)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", errNotALabel, domain, err)
		}
		if len(a) > 63 {
			return "", fmt.Errorf("%w: label of %q longer than 63 octets", errNotALabel, domain)
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), nil
}

// aLabelPath returns p with its domain in A-labels.
func aLabelPath(p smtp.Path) (smtp.Path, error) {
	d, err := ToALabels(p.Domain)
	if err != nil {
		return p, err
	}
	p.Domain = d
	return p, nil
}
