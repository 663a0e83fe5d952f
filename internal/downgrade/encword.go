package downgrade

import (
	"encoding/base64"
	"unicode/utf8"
)

// RFC 2047 encoded-words for 8-bit header text.

// maxEncodedWord is the longest encoded-word (RFC 2047 §2).
const maxEncodedWord = 75

// qSafe marks the octets that stand for themselves in a "Q" encoded-word
// anywhere, a phrase included (RFC 2047 §5 rule 3); space becomes '_'.
var qSafe = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/" {
		t[c] = true
	}
	return t
}()

// has8bit reports whether b holds an octet above 127.
func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// encodeWords returns text as encoded-words labelled cs, separated by
// single spaces, each at most 75 characters. It uses "Q" or "B", whichever
// is shorter, and never splits a UTF-8 character across two words (RFC
// 2047 §5); cs is utf-8, unknown-8bit or a single-octet charset (see
// labelFor), so no other character can be split.
func encodeWords(text []byte, cs string) []byte {
	qLen := 0
	for _, c := range text {
		if qSafe[c] || c == ' ' {
			qLen++
		} else {
			qLen += 3
		}
	}
	useB := qLen > base64.StdEncoding.EncodedLen(len(text))
	room := maxEncodedWord - len("=?") - len(cs) - len("?Q?") - len("?=")
	var out []byte
	for len(text) > 0 {
		// Take whole characters while they fit.
		take, width := 0, 0
		for take < len(text) {
			size := 1
			if cs == "utf-8" {
				_, size = utf8.DecodeRune(text[take:])
			}
			w := 0
			if useB {
				w = base64.StdEncoding.EncodedLen(take+size) - width
			} else {
				for _, c := range text[take : take+size] {
					if qSafe[c] || c == ' ' {
						w++
					} else {
						w += 3
					}
				}
			}
			if width+w > room && take > 0 {
				break
			}
			take += size
			width += w
		}
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = append(out, "=?"...)
		out = append(out, cs...)
		if useB {
			out = append(out, "?B?"...)
			out = base64.StdEncoding.AppendEncode(out, text[:take])
		} else {
			out = append(out, "?Q?"...)
			for _, c := range text[:take] {
				switch {
				case c == ' ':
					out = append(out, '_')
				case qSafe[c]:
					out = append(out, c)
				default:
					out = append(out, '=', upperHex[c>>4], upperHex[c&15])
				}
			}
		}
		out = append(out, "?="...)
		text = text[take:]
	}
	return out
}

// isWSP reports space and tab.
func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// fold turns "name:" and an unfolded field body into raw header lines:
// CRLF is inserted before white space wherever a line would pass 76
// characters, so unfolding gives the body back exactly (RFC 5322 §2.2.3).
// It fails when a line cannot be kept within 998 octets.
func fold(name string, v []byte) ([]byte, bool) {
	out := make([]byte, 0, len(name)+len(v)+len(v)/38+8)
	out = append(out, name...)
	out = append(out, ':')
	lineLen := len(out)
	if lineLen > maxLine {
		return nil, false // a field name no fold can shorten
	}
	for i := 0; i < len(v); {
		// A segment is white space followed by a word.
		j := i
		for j < len(v) && isWSP(v[j]) {
			j++
		}
		k := j
		for k < len(v) && !isWSP(v[k]) {
			k++
		}
		seg := v[i:k]
		// Break before white space that leads a word, never before
		// trailing white space (a line of only white space would end the
		// header section). The first line may hold the name alone.
		if isWSP(seg[0]) && k > j && lineLen+len(seg) > 76 {
			out = append(out, crlf...)
			lineLen = 0
		}
		out = append(out, seg...)
		lineLen += len(seg)
		if lineLen > maxLine {
			return nil, false
		}
		i = k
	}
	return append(out, crlf...), true
}
