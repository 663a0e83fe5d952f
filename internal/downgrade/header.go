package downgrade

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// field is one header field: its raw lines, each ending in CRLF. An mbox
// "From " line at the top of a message is kept as a field with no name.
type field struct {
	raw   []byte
	name  string // as written, without trailing white space
	lname string // lower case
}

// value returns the field body after the colon, unfolded (RFC 5322
// §2.2.3), without the final CRLF.
func (f *field) value() []byte {
	v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
	v = bytes.TrimSuffix(v, crlf)
	if bytes.Contains(v, crlf) {
		v = bytes.ReplaceAll(v, crlf, nil)
	}
	return v
}

// header is one header section.
type header struct {
	fields []field
	// noBlank is set when the section ended at the end of input without a
	// blank line.
	noBlank bool
	// inserted is set when a line without a colon ended the section and a
	// blank line must be written before it.
	inserted bool
}

var crlf = []byte("\r\n")

// get returns the first field named lname (lower case), or nil.
func (h *header) get(lname string) *field {
	for i := range h.fields {
		if h.fields[i].lname == lname {
			return &h.fields[i]
		}
	}
	return nil
}

// set replaces the first field named lname with raw, or appends raw.
func (h *header) set(lname, name string, raw []byte) {
	if f := h.get(lname); f != nil {
		f.raw = raw
		return
	}
	h.fields = append(h.fields, field{raw: raw, name: name, lname: lname})
}

// bytes returns the section as it is to be written, blank line included.
func (h *header) bytes() []byte {
	n := 2
	for i := range h.fields {
		n += len(h.fields[i].raw)
	}
	b := make([]byte, 0, n)
	for i := range h.fields {
		b = append(b, h.fields[i].raw...)
	}
	if !h.noBlank || h.inserted {
		b = append(b, crlf...)
	}
	return b
}

// readHeader reads one header section from src. Lines end in CRLF in the
// result; repairs are reported through note.
//
// A delimiter line of stack also ends the section (a part with no header
// and no body): it is pushed back and no blank line is added. msg is set
// for the header of a message (the input, or a message/rfc822 body),
// which may begin with an mbox "From " line: that line is kept as a field
// without a name.
func readHeader(src *lineSrc, maxBytes int, part string, stack []string, msg bool, note func(string)) (*header, error) {
	h := &header{}
	total := 0
	var line []byte
	for {
		chunk, err := src.next()
		if err != nil && len(line) == 0 {
			if errors.Is(err, io.EOF) {
				h.noBlank = true
				return h, nil
			}
			return nil, err
		}
		if err == nil {
			total += len(chunk)
			if total > maxBytes {
				return nil, malformed(part, "header section longer than %d octets", maxBytes)
			}
			if line == nil && len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
				line = chunk // common case: the whole line at once
			} else {
				line = append(line[:len(line):len(line)], chunk...)
				if line[len(line)-1] != '\n' && !src.eof {
					continue
				}
			}
		}
		// line is one whole line (or the input's unterminated last line).
		raw := line
		line = nil
		if len(raw) == 0 {
			h.noBlank = true
			return h, nil
		}
		if _, _, _, ok := matchDelim(raw, stack); ok {
			src.unread(raw)
			h.noBlank = true
			return h, nil
		}
		content, fix := raw, ""
		switch {
		case bytes.HasSuffix(raw, crlf):
			content = raw[:len(raw)-2]
		case raw[len(raw)-1] == '\n':
			content = raw[:len(raw)-1]
			fix = "bare LF line end in header section made CRLF"
		default:
			fix = "unterminated last header line given a CRLF"
		}
		if len(content) == 0 {
			if fix != "" {
				note(fix)
			}
			return h, nil // the blank line
		}
		if content[0] == ' ' || content[0] == '\t' {
			// A line of white space only is obs-FWS, a continuation
			// (RFC 5322 §4.2), never the end of the section.
			if len(h.fields) > 0 {
				f := &h.fields[len(h.fields)-1]
				f.raw = append(append(f.raw, content...), crlf...)
				if fix != "" {
					note(fix)
				}
				continue
			}
		} else if msg && len(h.fields) == 0 && bytes.HasPrefix(content, []byte("From ")) {
			// An mbox "From " line before a message's header: it belongs
			// to the header block and is kept where it is.
			b := make([]byte, 0, len(content)+2)
			b = append(append(b, content...), crlf...)
			h.fields = append(h.fields, field{raw: b})
			if fix != "" {
				note(fix)
			}
			continue
		} else if name, ok := fieldName(content); ok {
			b := make([]byte, 0, len(content)+2)
			b = append(append(b, content...), crlf...)
			h.fields = append(h.fields, field{raw: b, name: name, lname: strings.ToLower(name)})
			if fix != "" {
				note(fix)
			}
			continue
		}
		// Not a field: the body starts here (RFC 5322 §2.1 needs a blank
		// line first; insert one, as Postfix's cleanup does).
		note("header line without a colon: blank line inserted before it")
		src.unread(raw)
		h.inserted = true
		return h, nil
	}
}

// fieldName returns the name of the field that line starts, if it does
// (RFC 5322 §3.6.8: printable ASCII but colon; white space before the colon
// is tolerated, RFC 5322 §4.5).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return "", false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	return string(name), true
}

// mediaType is the tolerant reading of a Content-Type field.
type mediaType struct {
	full     string // type/subtype, lower case
	boundary string
	charset  string // the charset parameter, lower case
}

func (m mediaType) isMultipart() bool { return strings.HasPrefix(m.full, "multipart/") }

// isMessage reports the message types whose body is a whole message.
func (m mediaType) isMessage() bool {
	return m.full == "message/rfc822" || m.full == "message/global"
}

// isComposite reports the types that must never be encoded (RFC 2045
// §6.4, RFC 2046 §5.2.2, §5.2.3); message/global may be (RFC 6532 §3.5).
func (m mediaType) isComposite() bool {
	return m.isMultipart() || m.full == "message/rfc822" || m.full == "message/partial" ||
		m.full == "message/external-body"
}

// parseMediaType reads a Content-Type value tolerantly: comments are
// dropped, case is folded, and parameters other than boundary and charset
// are ignored.
func parseMediaType(v []byte) mediaType {
	s := stripComments(string(v))
	var m mediaType
	semi := strings.IndexByte(s, ';')
	t := s
	if semi >= 0 {
		t = s[:semi]
	}
	m.full = strings.ToLower(strings.Join(strings.Fields(t), ""))
	if semi < 0 {
		return m
	}
	rest := s[semi+1:]
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t;")
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val = b.String()
			rest = rest[min(i+1, len(rest)):]
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j:]
			} else {
				rest = ""
			}
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				j = len(rest)
			}
			val = strings.TrimRight(rest[:j], " \t")
			rest = rest[j:]
		}
		if key == "boundary" && m.boundary == "" {
			m.boundary = val
		}
		if key == "charset" && m.charset == "" {
			m.charset = strings.ToLower(val)
		}
	}
	return m
}

// stripComments removes RFC 5322 comments outside quoted strings.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (quoted || depth > 0) && i+1 < len(s):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
		case quoted:
			if c == '"' {
				quoted = false
			}
			b.WriteByte(c)
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '"':
			quoted = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// cteLabel reads a Content-Transfer-Encoding value tolerantly (case,
// comments, white space): "7bit", "8bit", "binary", "quoted-printable",
// "base64", another token, or "" when the field is absent or empty.
func cteLabel(f *field) string {
	if f == nil {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(stripComments(string(f.value()))))
}

// encodedCTE reports the labels whose body must be decoded to give the
// content (RFC 2045 §6.7, §6.8); every other label is walked and converted
// as identity.
func encodedCTE(label string) bool {
	return label == "quoted-printable" || label == "base64"
}

// identityCTE reports labels whose body is the content itself.
func identityCTE(label string) bool {
	return label == "" || label == "7bit" || label == "8bit" || label == "binary"
}
