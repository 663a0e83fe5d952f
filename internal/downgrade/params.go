package downgrade

import (
	"bytes"
	"strconv"
	"strings"
)

// RFC 2231 parameter values for 8-bit text in Content-Type and
// Content-Disposition.

// param is one parameter of a MIME field: its tokens, and what they say.
type param struct {
	toks    []token
	base    string // the attribute without its section and "*", lower case
	section int    // RFC 2231 §3 section number, -1 for none
	ext     bool   // RFC 2231 §4 extended value ("*" before the "=")
	value   []byte // the value, unquoted
	eight   bool   // the value holds 8-bit octets
	// bad is set for 8-bit octets no RFC 2231 value can carry: in the
	// attribute, or after the closing quote of the value.
	bad bool
}

// encodeParams rewrites a Content-Type or Content-Disposition body with
// 8-bit text. The type (or disposition) itself must be 7-bit. Every
// parameter whose value holds 8-bit octets (name=, filename=, …) is
// rewritten in the RFC 2231 extended form, its sections joined, labelled
// by labelFor (or with the charset an extended value already had); long
// values are split into sections again (RFC 2231 §3):
//
//	filename*=utf-8''R%C3%A9sum%C3%A9.pdf
//
// Parameters that are 7-bit stay as they were; a plain 8-bit value is
// dropped when the same parameter also has an RFC 2231 form, which then
// carries it. Comments with 8-bit text become encoded-words (RFC 2047 §5
// rule 2). A boundary cannot be given another form: an 8-bit one yields
// errStructured8bit.
func encodeParams(v []byte, cs string) ([]byte, error) {
	toks := tokenize(v)
	var segs [][]token
	start := 0
	for i, t := range toks {
		if t.kind == 's' && t.b[0] == ';' {
			segs = append(segs, toks[start:i])
			start = i + 1
		}
	}
	segs = append(segs, toks[start:])
	out, err := encodeComments(join(segs[0]), cs)
	if err != nil {
		return nil, err
	}
	params := make([]param, len(segs)-1)
	eight := map[paramGroup]bool{}
	for i, seg := range segs[1:] {
		p := parseParam(seg)
		params[i] = p
		if p.bad {
			return nil, errStructured8bit
		}
		if p.eight {
			if p.base == "boundary" || p.base == "" {
				return nil, errStructured8bit
			}
			eight[p.group()] = true
		}
	}
	has := map[paramGroup]bool{}
	for _, p := range params {
		has[p.group()] = true
	}
	done := map[paramGroup]bool{}
	for _, p := range params {
		g := p.group()
		switch {
		case !eight[g]:
			// 7-bit: as it was, even beside an 8-bit form of the same
			// parameter.
		case !g.ext && has[paramGroup{g.base, true}]:
			continue // 8-bit, and the RFC 2231 form of it carries the value
		case done[g]:
			continue // joined into the first section
		default:
			done[g] = true
			out = append(out, extendedParam(g, params, cs)...)
			continue
		}
		out = append(out, ';')
		nv, err := encodeComments(join(p.toks), cs)
		if err != nil {
			return nil, err
		}
		out = append(out, nv...)
	}
	return out, nil
}

// paramGroup names the parameters that make one value: the plain
// attribute=value, or the RFC 2231 form (attribute*=, attribute*N=,
// attribute*N*=), whose sections are joined.
type paramGroup struct {
	base string
	ext  bool // the RFC 2231 form
}

func (p param) group() paramGroup { return paramGroup{p.base, p.ext || p.section >= 0} }

// join concatenates tokens.
func join(toks []token) []byte {
	var b []byte
	for _, t := range toks {
		b = append(b, t.b...)
	}
	return b
}

// parseParam reads one "attribute=value" segment tolerantly: comments and
// white space around the value are ignored, a quoted value is unquoted,
// and an unquoted one runs to the end of the segment.
func parseParam(seg []token) param {
	p := param{toks: seg, section: -1}
	raw := stripComments(string(join(seg)))
	name, val, ok := strings.Cut(raw, "=")
	if !ok {
		p.eight = has8bit([]byte(raw))
		return p
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if strings.HasSuffix(name, "*") {
		p.ext, name = true, strings.TrimSuffix(name, "*")
	}
	if i := strings.IndexByte(name, '*'); i >= 0 {
		if n, err := strconv.Atoi(name[i+1:]); err == nil && n >= 0 {
			p.section, name = n, name[:i]
		}
	}
	p.base = name
	p.bad = has8bit([]byte(name))
	val = strings.Trim(val, " \t")
	if strings.HasPrefix(val, `"`) {
		val = val[1:]
		if i := closingQuote(val); i >= 0 {
			p.bad = p.bad || has8bit([]byte(val[i:]))
			val = val[:i]
		}
		p.value = unescape([]byte(val))
	} else {
		p.value = []byte(val)
	}
	p.eight = has8bit(p.value)
	return p
}

// closingQuote returns the index of the quote that ends a quoted string
// whose opening quote has been removed, or -1.
func closingQuote(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// extendedParam returns the parameters of group g, joined, as one RFC 2231
// extended value (split again into sections when long), each section
// preceded by "; ".
func extendedParam(g paramGroup, params []param, cs string) []byte {
	base := g.base
	var secs []param
	for _, p := range params {
		if p.group() == g {
			secs = append(secs, p)
		}
	}
	// Sections in order (RFC 2231 §3); an unsectioned value stands alone.
	ordered := make([]param, 0, len(secs))
	for n := -1; len(ordered) < len(secs) && n <= len(secs)+1000; n++ {
		for _, p := range secs {
			if p.section == n {
				ordered = append(ordered, p)
			}
		}
	}
	if len(ordered) < len(secs) {
		ordered = secs // gaps in the numbering: keep the order written
	}
	var octets []byte
	label, lang := "", ""
	for i, p := range ordered {
		v := p.value
		if p.ext {
			if i == 0 {
				// charset'language'value (RFC 2231 §4)
				if a := bytes.IndexByte(v, '\''); a >= 0 {
					if b := bytes.IndexByte(v[a+1:], '\''); b >= 0 {
						label, lang = strings.ToLower(string(v[:a])), string(v[a+1:a+1+b])
						v = v[a+b+2:]
					}
				}
			}
			v = pctDecode(v)
		}
		octets = append(octets, v...)
	}
	if label == "" || label == "us-ascii" {
		label = labelFor(octets, cs)
	}
	enc := pctEncode(octets)
	// About 60 characters of value a section, the first one's charset
	// and language included, so that each fits a folded line.
	const sectionLen = 60
	prefix := label + "'" + lang + "'"
	if len(prefix)+len(enc) <= sectionLen {
		return []byte("; " + base + "*=" + prefix + enc)
	}
	var out []byte
	for n := 0; len(enc) > 0; n++ {
		room := sectionLen
		if n == 0 {
			room = max(sectionLen-len(prefix), 12)
		}
		k := min(room, len(enc))
		for k < len(enc) && k >= 2 && (enc[k-1] == '%' || enc[k-2] == '%') {
			k-- // never split a %XX escape
		}
		out = append(out, "; "+base+"*"+strconv.Itoa(n)+"*="...)
		if n == 0 {
			out = append(out, prefix...)
		}
		out = append(out, enc[:k]...)
		enc = enc[k:]
	}
	return out
}

// attrSafe marks the octets that stand for themselves in an RFC 2231
// extended value: attribute-char, any CHAR but space, controls, "*", "'",
// "%" and the tspecials (RFC 2231 §7, RFC 2045 §5.1).
var attrSafe = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = strings.IndexByte(`*'%()<>@,;:\"/[]?=`, byte(c)) < 0
	}
	return t
}()

// pctEncode escapes every octet that is not an attribute-char as %XX.
func pctEncode(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if attrSafe[c] {
			s.WriteByte(c)
			continue
		}
		s.WriteByte('%')
		s.WriteByte(upperHex[c>>4])
		s.WriteByte(upperHex[c&15])
	}
	return s.String()
}

// pctDecode undoes %XX escapes; anything else, raw 8-bit octets included,
// stands for itself.
func pctDecode(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
			continue
		}
		out = append(out, b[i])
	}
	return out
}
