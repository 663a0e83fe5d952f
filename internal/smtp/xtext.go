package smtp

import "strings"

// EncodeXtext encodes s as xtext (RFC 3461 §4): octets from "!" to "~"
// stand for themselves, except "+" and "=", which like every other octet
// are written "+XX" with two upper-case hex digits. Use it for ENVID and
// ORCPT values and for AUTH= (RFC 4954 §5).
func EncodeXtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('+')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// DecodeXtext decodes xtext (RFC 3461 §4). It fails with a *SyntaxError on
// an octet outside "!".."~", on "=", and on a "+" not followed by two
// upper-case hex digits.
func DecodeXtext(s string) (string, error) {
	if strings.IndexByte(s, '+') < 0 {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < '!' || c > '~' || c == '=' {
				return "", syntaxErr("bad character in xtext")
			}
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", syntaxErr("truncated hexchar in xtext")
			}
			hi, ok1 := xtextHex(s[i+1])
			lo, ok2 := xtextHex(s[i+2])
			if !ok1 || !ok2 {
				return "", syntaxErr("bad hexchar in xtext")
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", syntaxErr("bad character in xtext")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// xtextHex returns the value of an upper-case hex digit (RFC 3461 §4
// hexchar uses %x30-39 / %x41-46 only).
func xtextHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
