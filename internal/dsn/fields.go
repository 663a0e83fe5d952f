package dsn

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Line lengths: fold at maxLine where a field has white space to fold at
// (RFC 5322 §2.1.1 "SHOULD be no more than 78"), and never let a line reach
// the hard limit of 998 octets.
const (
	maxLine  = 78
	hardLine = 900
)

// dateFormat is the RFC 5322 §3.3 date-time used in Date, Arrival-Date and
// Last-Attempt-Date.
const dateFormat = "Mon, 02 Jan 2006 15:04:05 -0700"

// formatDate formats t for a header or DSN field.
func formatDate(t time.Time) string { return t.Format(dateFormat) }

// cleanText makes s safe for one header field or text line: control
// characters become spaces, invalid UTF-8 becomes '?', and non-ASCII
// characters stay when utf8OK (a message/global report) or else are written
// as "\x{HHHH}", the EmbeddedUnicodeChar notation of RFC 6533 §3, so that
// a 7-bit report still shows what the next hop said.
func cleanText(s string, utf8OK bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 32 || c == 127 {
				c = ' '
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteByte('?')
		case r >= 0x80 && r < 0xA0, r == 0x2028, r == 0x2029, r == 0x85:
			// C1 controls and Unicode line separators.
			b.WriteByte(' ')
		case utf8OK:
			b.WriteString(s[i : i+n])
		default:
			fmt.Fprintf(&b, `\x{%X}`, r)
		}
		i += n
	}
	return b.String()
}

// isASCII reports whether s holds only ASCII octets.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// addrField returns the "addr-type; address" value of a Final-Recipient (or
// similar) field for p: "rfc822" for an ASCII address, otherwise "utf-8"
// (RFC 6533 §3) with the address as it is in a message/global-delivery-status
// (utf-8-address) and encoded as utf-8-addr-xtext in a 7-bit
// message/delivery-status.
func addrField(p smtp.Path, global bool) string {
	a := p.Address()
	if isASCII(a) {
		return "rfc822; " + cleanText(a, false)
	}
	if global {
		return "utf-8; " + cleanText(a, true)
	}
	return "utf-8; " + utf8AddrXtext(a)
}

// utf8AddrXtext encodes s as utf-8-addr-xtext (RFC 6533 §3): printable ASCII
// other than "+", "=" and "\" stands for itself; every other character is
// written "\x{HEXPOINT}".
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x{FFFD}`)
		case r > ' ' && r < 127 && r != '+' && r != '=' && r != '\\':
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x{%02X}`, r)
		default:
			fmt.Fprintf(&b, `\x{%X}`, r)
		}
	}
	return b.String()
}

// origRcptField returns the Original-Recipient value for an ORCPT parameter
// "addr-type;address" (already decoded from xtext), or "" when the
// parameter is absent or unusable.
func origRcptField(orcpt string, global bool) string {
	typ, addr, ok := strings.Cut(orcpt, ";")
	typ = strings.TrimSpace(typ)
	addr = strings.TrimSpace(addr)
	if !ok || typ == "" || addr == "" || !isAtomText(typ) {
		return ""
	}
	if isASCII(addr) {
		return typ + "; " + cleanText(addr, false)
	}
	if global {
		return typ + "; " + cleanText(addr, true)
	}
	if strings.EqualFold(typ, "utf-8") {
		return typ + "; " + utf8AddrXtext(addr)
	}
	// RFC 3461 §4.2: an address of another type that is not ASCII is
	// passed as xtext.
	return typ + "; " + smtp.EncodeXtext(addr)
}

// isAtomText reports whether s is a plausible address-type or
// diagnostic-type atom (RFC 3464 §2.1.2).
func isAtomText(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// envIDField returns the Original-Envelope-Id value for an ENVID: as given
// when it is printable ASCII without white space, and as xtext (RFC 3461
// §4, the form it had on the MAIL command) otherwise.
func envIDField(id string) string {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return smtp.EncodeXtext(id)
		}
	}
	return id
}

// writeField writes "Name: value" CRLF, folding at spaces so that lines
// stay within maxLine octets where possible (RFC 5322 §2.2.3). Every space
// is kept, so unfolding gives the value back exactly (a quoted local part
// may hold several in a row), and no folded line is white space only. A run
// without spaces longer than hardLine is broken with inserted folding white
// space, so no line comes near the 998-octet limit. value must be free of
// CR and LF.
func writeField(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	col := len(name) + 1
	for _, w := range strings.Split(value, " ") {
		for len(w) > hardLine {
			cut := runeCut(w, hardLine)
			b.WriteString("\r\n ")
			b.WriteString(w[:cut])
			col = 1 + cut
			w = w[cut:]
		}
		if w != "" && col+1+len(w) > maxLine && col > len(name)+1 {
			b.WriteString("\r\n")
			col = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		col += 1 + len(w)
	}
	b.WriteString("\r\n")
}

// replyText formats a reply as one line for a Diagnostic-Code: code,
// enhanced code and the text of every line, each line's text separated by
// a space, as Postfix and Sendmail write it.
func replyText(r smtp.Reply, utf8OK bool) string {
	return cleanText(r.String(), utf8OK)
}
