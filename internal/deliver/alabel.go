package deliver

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ferrymta/ferry/internal/smtp"
)

// The A-label conversion here is used because golang.org/x/net/idna needs
// golang.org/x/text, which is not in go.sum. It lower-cases each U-label and
// encodes it with Punycode (RFC 3492) behind "xn--" (RFC 5890 §2.3.2.1). It
// does not apply IDNA2008's full validity rules; a label it cannot encode
// (invalid UTF-8, control or space characters) is an error, and the
// recipient then fails with 5.6.7 rather than go out damaged.

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
		l = strings.ToLower(l)
		for _, r := range l {
			if unicode.IsControl(r) || unicode.IsSpace(r) || r == utf8.RuneError {
				return "", fmt.Errorf("%w: %q holds %U", errNotALabel, domain, r)
			}
		}
		enc, err := punycodeEncode(l)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %w", errNotALabel, domain, err)
		}
		a := "xn--" + enc
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

// Punycode parameters (RFC 3492 §5).
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
)

// punycodeEncode implements RFC 3492 §6.3.
func punycodeEncode(s string) (string, error) {
	runes := []rune(s)
	var out []byte
	for _, r := range runes {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	b := len(out)
	h := b
	if b > 0 {
		out = append(out, '-')
	}
	n, delta, bias := rune(pcInitialN), 0, pcInitialBias
	for h < len(runes) {
		m := rune(unicode.MaxRune + 1)
		for _, r := range runes {
			if r >= n && r < m {
				m = r
			}
		}
		if int64(delta)+int64(m-n)*int64(h+1) > 1<<31-1 {
			return "", errors.New("punycode overflow")
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range runes {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := pcBase; ; k += pcBase {
				t := k - bias
				if t < pcTMin {
					t = pcTMin
				} else if t > pcTMax {
					t = pcTMax
				}
				if q < t {
					break
				}
				out = append(out, pcDigit(t+(q-t)%(pcBase-t)))
				q = (q - t) / (pcBase - t)
			}
			out = append(out, pcDigit(q))
			bias = pcAdapt(delta, h+1, h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out), nil
}

func pcDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

func pcAdapt(delta, numPoints int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}
