package smtp

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Path is a reverse or forward path (RFC 5321 §4.1.2) with any source route
// dropped. The null reverse path "<>" has an empty LocalPart and Domain.
type Path struct {
	// LocalPart is the local part with quoting removed (the unquoted
	// content of a Quoted-string).
	LocalPart string
	// Domain is the domain or address literal ("[192.0.2.1]") as given.
	Domain string
}

// MaxPathLength is the longest path, angle brackets included, that RFC 5321
// §4.5.3.1.3 allows; a longer one is a syntax error.
const MaxPathLength = 256

// IsNull reports whether p is the null path "<>".
func (p Path) IsNull() bool { return p.LocalPart == "" && p.Domain == "" }

// IsASCII reports whether the path is all ASCII. A path that is not may only
// be used when the client gave SMTPUTF8 (RFC 6531 §3.4); a server must
// refuse it otherwise (553 5.6.7 is customary, RFC 6531 §3.6.1).
func (p Path) IsASCII() bool { return isASCII(p.LocalPart) && isASCII(p.Domain) }

// Address returns the mailbox without angle brackets, e.g. "user@example.com"
// or "\"john doe\"@example.com", with the local part quoted as String does.
// It is "" for the null path.
func (p Path) Address() string {
	if p.IsNull() {
		return ""
	}
	var b strings.Builder
	b.Grow(len(p.LocalPart) + len(p.Domain) + 3)
	writeLocalPart(&b, p.LocalPart)
	if p.Domain != "" {
		b.WriteByte('@')
		writeDomain(&b, p.Domain)
	}
	return b.String()
}

// String formats the path as sent on the wire, e.g. "<user@example.com>" or
// "<>". The local part is written as a Dot-string when it is one and as a
// Quoted-string otherwise (RFC 5321 §4.1.2), so a local part holding spaces,
// '>' or '=' can never end the path early and inject ESMTP parameters at the
// next hop. Control characters, which no parsed path holds and no SMTP path
// can carry, are written as '?'; so are spaces and angle brackets in Domain.
func (p Path) String() string { return "<" + p.Address() + ">" }

// ParseReversePath parses a reverse path "<...>" (RFC 5321 §4.1.2), which may
// be the null path "<>".
func ParseReversePath(s string) (Path, error) { return parsePath(s, true) }

// ParseForwardPath parses a forward path "<...>" (RFC 5321 §4.1.2), which may
// be "<Postmaster>" without a domain (RFC 5321 §4.1.1.3).
func ParseForwardPath(s string) (Path, error) { return parsePath(s, false) }

// ParseAddress parses a mailbox without angle brackets, "local@domain", as
// found in configuration or in an ORCPT of type rfc822. The domain is
// required.
func ParseAddress(addr string) (Path, error) {
	p, err := parsePath("<"+addr+">", false)
	if err != nil {
		return Path{}, err
	}
	if p.Domain == "" || strings.HasPrefix(addr, "@") {
		return Path{}, syntaxErr("address must be local-part@domain")
	}
	return p, nil
}

// pathEnd returns the index just after the '>' that closes the path at the
// start of s (s[0] == '<'), skipping quoted strings and their quoted pairs.
func pathEnd(s string) (int, error) {
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '>':
			return i + 1, nil
		}
	}
	return 0, syntaxErr("address must be enclosed in <>")
}

// parsePath parses "<...>"; reverse selects the reverse-path rules (null
// path allowed, "<Postmaster>" not).
func parsePath(s string, reverse bool) (Path, error) {
	if len(s) > MaxPathLength {
		return Path{}, syntaxErr("address too long")
	}
	if len(s) < 2 || s[0] != '<' || s[len(s)-1] != '>' {
		return Path{}, syntaxErr("address must be enclosed in <>")
	}
	if !utf8.ValidString(s) {
		return Path{}, syntaxErr("address is not valid UTF-8")
	}
	in := s[1 : len(s)-1]
	if in == "" {
		if reverse {
			return Path{}, nil
		}
		return Path{}, syntaxErr("null address not allowed here")
	}
	if in[0] == '@' {
		// A-d-l ":" — a source route, accepted and ignored (RFC 5321
		// §4.1.2 and Appendix C). Its domains are plain domains, so the
		// first ':' ends it.
		route, rest, ok := strings.Cut(in, ":")
		if !ok {
			return Path{}, syntaxErr("bad source route")
		}
		for _, hop := range strings.Split(route, ",") {
			if len(hop) < 2 || hop[0] != '@' || !validDomain(hop[1:]) {
				return Path{}, syntaxErr("bad source route")
			}
		}
		in = rest
	}
	if !reverse && strings.EqualFold(in, "postmaster") {
		return Path{LocalPart: in}, nil
	}
	local, rest, err := parseLocalPart(in)
	if err != nil {
		return Path{}, err
	}
	if rest == "" || rest[0] != '@' {
		return Path{}, syntaxErr("address must be local-part@domain")
	}
	domain := rest[1:]
	if strings.HasPrefix(domain, "[") {
		if !validAddressLiteral(domain) {
			return Path{}, syntaxErr("bad address literal")
		}
	} else if !validDomain(domain) {
		return Path{}, syntaxErr("bad domain")
	}
	return Path{LocalPart: local, Domain: domain}, nil
}

// parseLocalPart parses the Local-part at the start of s (RFC 5321 §4.1.2,
// extended by RFC 6531 §3.3 to UTF-8) and returns it unquoted with the rest.
func parseLocalPart(s string) (local, rest string, err error) {
	if s != "" && s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '"':
				return b.String(), s[i+1:], nil
			case c == '\\':
				// quoted-pairSMTP = %d92 %d32-126
				if i+1 >= len(s) || s[i+1] < 32 || s[i+1] > 126 {
					return "", "", syntaxErr("bad quoted pair in local part")
				}
				i++
				b.WriteByte(s[i])
			case c >= 32 && c <= 126 || c >= 0x80:
				b.WriteByte(c)
			default:
				return "", "", syntaxErr("bad character in quoted local part")
			}
		}
		return "", "", syntaxErr("unterminated quoted local part")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		at = len(s)
	}
	local = s[:at]
	if !isDotString(local) {
		return "", "", syntaxErr("bad local part")
	}
	return local, s[at:], nil
}

// isAtext reports whether c is atext (RFC 5322 §3.2.3) or, as RFC 6531
// §3.3 allows, a byte of a non-ASCII UTF-8 character.
func isAtext(c byte) bool {
	if isAlnum(c) || c >= 0x80 {
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isDotString reports whether s is a Dot-string: Atom *("." Atom).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if !isAtext(c) {
			return false
		}
	}
	return true
}

// validDomain reports whether s is a Domain (RFC 5321 §4.1.2): dot-separated
// labels of letters, digits and inner hyphens, each at most 63 octets, at
// most 255 in all. Labels holding non-ASCII UTF-8 (U-labels, RFC 6531 §3.3)
// are accepted with the same ASCII rules.
func validDomain(s string) bool {
	if s == "" || len(s) > 255 || !utf8.ValidString(s) {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c < 0x80 {
				return false
			}
		}
	}
	return true
}

// validAddressLiteral reports whether s is an address-literal (RFC 5321
// §4.1.3): "[" IPv4 / "IPv6:" IPv6 / tag ":" dcontent "]".
func validAddressLiteral(s string) bool {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	lit := s[1 : len(s)-1]
	tag, val, tagged := strings.Cut(lit, ":")
	if !tagged {
		a, err := netip.ParseAddr(lit)
		return err == nil && a.Is4()
	}
	if strings.EqualFold(tag, "IPv6") {
		a, err := netip.ParseAddr(val)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	// General-address-literal = Standardized-tag ":" 1*dcontent, where
	// the tag is an Ldh-str and dcontent is %d33-90 / %d94-126. '<', '>'
	// and '"' are refused as well: they would confuse path parsing here
	// and at the next hop, and no registered tag uses them.
	if tag == "" || !isAlnum(tag[len(tag)-1]) || val == "" {
		return false
	}
	for i := 0; i < len(tag); i++ {
		if !isAlnum(tag[i]) && tag[i] != '-' {
			return false
		}
	}
	for i := 0; i < len(val); i++ {
		if c := val[i]; c < 33 || c > 126 || c >= 91 && c <= 93 || c == '<' || c == '>' || c == '"' {
			return false
		}
	}
	return true
}

// writeLocalPart writes a local part as a Dot-string when it is one and as a
// Quoted-string otherwise, escaping '"' and '\' (RFC 5321 §4.1.2).
func writeLocalPart(b *strings.Builder, local string) {
	if isDotString(local) {
		b.WriteString(local)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		switch c := local[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 32 || c == 127:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// writeDomain writes a domain, replacing octets that could end the path or
// the command line.
func writeDomain(b *strings.Builder, d string) {
	for i := 0; i < len(d); i++ {
		switch c := d[i]; {
		case c <= ' ' || c == 127 || c == '<' || c == '>' || c == '"' || c == '\\':
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
}

// isASCII reports whether s holds only ASCII octets.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
