package downgradetest

import (
	"bytes"
	"fmt"
	"mime"
	"regexp"
	"strconv"
	"strings"
)

// Decoding header text as readers do.

// relabel gives every encoded-word of v the label x-raw, which rawCharset
// decodes to the octets themselves (the standard decoder would turn
// ISO-8859-1 text into UTF-8 on its own).
func relabel(v string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && quoted && i+1 < len(v):
			b.WriteString(v[i : i+2])
			i++
			continue
		case c == '"':
			quoted = !quoted
		case !quoted && strings.HasPrefix(v[i:], "=?"):
			j := strings.IndexByte(v[i+2:], '?')
			if j > 0 && i+j+4 < len(v) && v[i+j+4] == '?' && strings.IndexByte("BbQq", v[i+j+3]) >= 0 {
				if k := strings.Index(v[i+j+5:], "?="); k >= 0 {
					end := i + j + 5 + k + 2
					b.WriteString("=?x-raw?")
					b.WriteString(v[i+j+3 : end])
					i = end - 1
					continue
				}
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// decodeText decodes the encoded-words of v. Raw 8-bit octets inside a "Q"
// encoded-word are taken as themselves (as many readers do) by escaping
// them first; the standard decoder would show such a word undecoded.
func decodeText(dec *mime.WordDecoder, v string) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case !in && strings.HasPrefix(v[i:], "=?"):
			if j := strings.Index(v[i+2:], "?"); j > 0 && i+j+4 < len(v) && (v[i+j+3] == 'q' || v[i+j+3] == 'Q') && v[i+j+4] == '?' &&
				strings.Contains(v[i+j+5:], "?=") {
				in = true
				b.WriteString(v[i : i+j+5])
				i += j + 4
				continue
			}
		case in && strings.HasPrefix(v[i:], "?="):
			in = false
		case in && c >= 0x80:
			fmt.Fprintf(&b, "=%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	s, err := dec.DecodeHeader(b.String())
	if err != nil {
		return v
	}
	return s
}

// params lists the type and the parameters of a Content-Type or
// Content-Disposition value, RFC 2231 sections joined and decoded to
// octets whatever their charset.
func params(dec *mime.WordDecoder, v string) string {
	segs := splitUnquoted(v, ';')
	out := []string{strings.ToLower(collapse(decodeText(dec, segs[0])))}
	type part struct {
		sec int
		ext bool
		val string
	}
	vals := map[string][]part{}
	var names []string
	for _, s := range segs[1:] {
		k, val, ok := strings.Cut(dropComments(s), "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.TrimSpace(val)
		if strings.HasPrefix(val, `"`) {
			val = unquote(val)
		}
		p := part{sec: -1}
		if strings.HasSuffix(k, "*") {
			p.ext, k = true, strings.TrimSuffix(k, "*")
		}
		if i := strings.IndexByte(k, '*'); i >= 0 {
			fmt.Sscan(k[i+1:], &p.sec)
			k = k[:i]
		}
		p.val = val
		if _, seen := vals[k]; !seen {
			names = append(names, k)
		}
		vals[k] = append(vals[k], p)
	}
	for _, k := range names {
		ps := vals[k]
		var b strings.Builder
		for sec := -1; sec < len(ps)+1; sec++ {
			for _, p := range ps {
				if p.sec != sec {
					continue
				}
				val := p.val
				if p.ext {
					if sec <= 0 {
						if i := strings.IndexByte(val, '\''); i >= 0 {
							if j := strings.IndexByte(val[i+1:], '\''); j >= 0 {
								val = val[i+j+2:]
							}
						}
					}
					val = pctDecode(val)
				} else if s, err := dec.DecodeHeader(val); err == nil {
					val = s
				}
				b.WriteString(val)
			}
		}
		out = append(out, k+"="+b.String())
	}
	return strings.Join(out, "; ")
}

func pctDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unquote(s string) string {
	var b strings.Builder
	for i := 1; i < len(s) && s[i] != '"'; i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// splitUnquoted splits s at sep outside quoted strings.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	q, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q:
			i++
		case s[i] == '"':
			q = !q
		case s[i] == sep && !q:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// collapse removes quoting and makes every white space run one space.
func collapse(s string) string {
	s = strings.NewReplacer(`\"`, `"`, `"`, "", `\\`, `\`).Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

func unfold(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), nil)
	return bytes.ReplaceAll(b, []byte("\n"), nil)
}

// hideQuoted breaks every "=?" inside a quoted string of v as "=\x00?".
func hideQuoted(v string) string {
	var b strings.Builder
	q := false
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && q && i+1 < len(v):
			b.WriteString(v[i : i+2])
			i++
			continue
		case v[i] == '"':
			q = !q
		case q && strings.HasPrefix(v[i:], "=?"):
			b.WriteString("=\x00")
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// comment matches an innermost comment, or an unterminated one.
var comment = regexp.MustCompile(`\((?:[^()\\]|\\.)*(?:\)|$)`)

// dropComments removes the comments of a parameter (outside a quoted
// value; quoted values hold no parentheses in the corpus that matter).
func dropComments(s string) string {
	if strings.Contains(s, `"`) {
		return s
	}
	for {
		t := comment.ReplaceAllString(s, "")
		if t == s {
			return t
		}
		s = t
	}
}
