package interop

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
)

// This file decodes messages with the standard library only (mime,
// mime/multipart, mime/quotedprintable, encoding/base64, net/mail): an
// independent check of Ferry's converter, which has its own encoders.

// maxLine is the longest line SMTP allows, without its CRLF (RFC 5321
// §4.5.3.1.6).
const maxLine = 998

// entity is one MIME entity of a message, decoded: its header fields (with
// RFC 2047 encoded-words decoded to their octets) and, for a leaf, its
// content with the transfer encoding undone.
type entity struct {
	path      string // "" for the message, ".1", ".1.2", ".2/" (inside message/rfc822) …
	fields    map[string][]string
	mediaType string
	cte       string // the Content-Transfer-Encoding label, normalised; "" when absent
	leaf      bool
	body      []byte
}

// identityCharset lets mime.WordDecoder hand back an encoded-word's octets
// whatever its charset (including RFC 1428 unknown-8bit).
func identityCharset(_ string, r io.Reader) (io.Reader, error) { return r, nil }

// decodeEntities walks a message's MIME tree (recursing into multipart/*
// and message/rfc822) and returns every entity, decoded.
func decodeEntities(raw []byte) ([]entity, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing message: %w", err)
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	var out []entity
	err = walkEntity("", map[string][]string(m.Header), body, &out, 0)
	return out, err
}

func walkEntity(path string, hdr map[string][]string, body []byte, out *[]entity, depth int) error {
	if depth > 20 {
		return fmt.Errorf("entity %q: MIME nesting deeper than 20", path)
	}
	dec := mime.WordDecoder{CharsetReader: identityCharset}
	e := entity{path: path, fields: map[string][]string{}, mediaType: "text/plain"}
	for k, vs := range hdr {
		for _, v := range vs {
			d, err := dec.DecodeHeader(v)
			if err != nil {
				return fmt.Errorf("entity %q: field %s %q: %w", path, k, v, err)
			}
			e.fields[k] = append(e.fields[k], d)
		}
	}
	var params map[string]string
	if ct := firstField(hdr, "Content-Type"); ct != "" {
		mt, p, err := mime.ParseMediaType(ct)
		if err != nil {
			return fmt.Errorf("entity %q: Content-Type %q: %w", path, ct, err)
		}
		e.mediaType, params = mt, p
	}
	e.cte = cteLabel(firstField(hdr, "Content-Transfer-Encoding"))
	switch {
	case strings.HasPrefix(e.mediaType, "multipart/"):
		*out = append(*out, e)
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for i := 1; i <= 1000; i++ {
			// NextRawPart: NextPart would undo quoted-printable itself
			// and hide the field.
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("entity %q: part %d: %w", path, i, err)
			}
			pb, err := io.ReadAll(p)
			if err != nil {
				return fmt.Errorf("entity %q: part %d: %w", path, i, err)
			}
			if err := walkEntity(fmt.Sprintf("%s.%d", path, i), p.Header, pb, out, depth+1); err != nil {
				return err
			}
		}
		return fmt.Errorf("entity %q: more than 1000 parts", path)
	case e.mediaType == "message/rfc822" || e.mediaType == "message/global":
		*out = append(*out, e)
		m, err := mail.ReadMessage(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("entity %q: enclosed message: %w", path, err)
		}
		inner, err := io.ReadAll(m.Body)
		if err != nil {
			return fmt.Errorf("entity %q: enclosed message: %w", path, err)
		}
		return walkEntity(path+"/", map[string][]string(m.Header), inner, out, depth+1)
	}
	e.leaf = true
	var r io.Reader = bytes.NewReader(body)
	switch e.cte {
	case "", "7bit", "8bit", "binary":
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r) // skips CR and LF
	default:
		return fmt.Errorf("entity %q: unknown Content-Transfer-Encoding %q", path, e.cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("entity %q: decoding %s: %w", path, e.cte, err)
	}
	e.body = b
	*out = append(*out, e)
	return nil
}

func firstField(hdr map[string][]string, name string) string {
	for k, vs := range hdr {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// cteLabel normalises a Content-Transfer-Encoding value: lower case, no
// comments, no white space (RFC 2045 §6.1, RFC 5322 §3.2.2).
func cteLabel(v string) string {
	var b strings.Builder
	depth := 0
	for _, c := range v {
		switch {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0 && c != ' ' && c != '\t':
			b.WriteRune(c)
		}
	}
	return strings.ToLower(b.String())
}

// addedFields are the fields a conversion may add to an entity (RFC 2045
// §4, §5, §6; RFC 1428 for non-MIME mail), and the trace fields relays
// prepend (RFC 5321 §4.4).
var addedFields = []string{"Mime-Version", "Content-Type", "Content-Transfer-Encoding", "Received"}

// checkSameDecoded fails the test unless got decodes to the same MIME tree
// as orig (see diffDecoded).
func checkSameDecoded(t *testing.T, name string, orig, got []byte) {
	t.Helper()
	for _, p := range diffDecoded(orig, got) {
		t.Errorf("%s: %s", name, p)
	}
}

// diffDecoded returns how got differs from orig once both are decoded:
// the same entities and media types, every leaf's content equal octet for
// octet after undoing the transfer encoding, every header field of orig
// present with the same decoded value (Content-Transfer-Encoding and trace
// fields aside), and no other field added except those a conversion may
// add. Composite entities must not be encoded (RFC 2045 §6.4, RFC 2046
// §5.2.1). Nil means no difference.
func diffDecoded(orig, got []byte) []string {
	oe, err := decodeEntities(orig)
	if err != nil {
		return []string{fmt.Sprintf("decoding the original: %v", err)}
	}
	ge, err := decodeEntities(got)
	if err != nil {
		return []string{fmt.Sprintf("decoding what arrived: %v\n%s", err, clip(got))}
	}
	if len(oe) != len(ge) {
		return []string{fmt.Sprintf("%d MIME entities arrived, want %d (%v vs %v)", len(ge), len(oe), paths(ge), paths(oe))}
	}
	var out []string
	for i := range oe {
		o, g := oe[i], ge[i]
		where := fmt.Sprintf("entity %q", o.path)
		if o.path != g.path || o.mediaType != g.mediaType || o.leaf != g.leaf {
			out = append(out, fmt.Sprintf("%s: arrived as %q %s (leaf %v), want %q %s (leaf %v)", where, g.path, g.mediaType, g.leaf, o.path, o.mediaType, o.leaf))
			continue
		}
		if o.leaf && !bytes.Equal(o.body, g.body) {
			out = append(out, fmt.Sprintf("%s: decoded content differs from the original (%d octets, want %d)\ngot:  %q\nwant: %q", where, len(g.body), len(o.body), clip(g.body), clip(o.body)))
		}
		if !o.leaf && g.cte != "" && g.cte != "7bit" && g.cte != "8bit" && g.cte != "binary" {
			out = append(out, fmt.Sprintf("%s: composite entity labelled %q; it must not be encoded (RFC 2045 §6.4)", where, g.cte))
		}
		for k, ov := range o.fields {
			if k == "Content-Transfer-Encoding" || k == "Received" {
				continue
			}
			if gv := g.fields[k]; !slices.Equal(ov, gv) {
				out = append(out, fmt.Sprintf("%s: field %s decodes to %q, want %q", where, k, gv, ov))
			}
		}
		for k := range g.fields {
			if _, ok := o.fields[k]; !ok && !slices.Contains(addedFields, k) {
				out = append(out, fmt.Sprintf("%s: field %s added: %q", where, k, g.fields[k]))
			}
		}
	}
	return out
}

// check7Bit fails the test unless data is valid 7-bit SMTP content (see
// problems7Bit).
func check7Bit(t *testing.T, name string, data []byte) {
	t.Helper()
	for _, p := range problems7Bit(data) {
		t.Errorf("%s: %s", name, p)
	}
}

// checkLines fails the test when data has a line longer than 998 octets
// or a bare CR or LF (see problemsLines).
func checkLines(t *testing.T, name string, data []byte) {
	t.Helper()
	for _, p := range problemsLines(data) {
		t.Errorf("%s: %s", name, p)
	}
}

// problems7Bit returns why data is not valid 7-bit SMTP content: an octet
// above 127 or a NUL, a line over 998 octets, a bare CR or LF (RFC 5321
// §2.3.8, §4.5.3.1.6; RFC 2045 §2.7). Nil means valid.
func problems7Bit(data []byte) []string {
	for i, c := range data {
		if c > 127 || c == 0 {
			return append([]string{fmt.Sprintf("octet 0x%02x at offset %d: not 7-bit; context %q", c, i, data[max(0, i-40):min(len(data), i+40)])}, problemsLines(data)...)
		}
	}
	return problemsLines(data)
}

// problemsLines returns the lines of data longer than 998 octets or with a
// bare CR or LF.
func problemsLines(data []byte) []string {
	var out []string
	for n, line := range bytes.SplitAfter(data, []byte("\r\n")) {
		body := bytes.TrimSuffix(line, []byte("\r\n"))
		if len(body) > maxLine {
			out = append(out, fmt.Sprintf("line %d has %d octets, more than %d", n+1, len(body), maxLine))
		}
		if bytes.ContainsAny(body, "\r\n") {
			out = append(out, fmt.Sprintf("line %d has a bare CR or LF: %q", n+1, clip(body)))
		}
	}
	return out
}

// longestLine returns the length of data's longest line, without its CRLF.
func longestLine(data []byte) int {
	n := 0
	for _, line := range bytes.Split(data, []byte("\r\n")) {
		n = max(n, len(line))
	}
	return n
}

// stripTrace returns data without the trace fields relays put at its top
// (Received, and Return-Path should one appear; RFC 5321 §4.4), and how
// many Received fields it removed.
func stripTrace(data []byte) ([]byte, int) {
	received := 0
	for range 100 {
		i := bytes.IndexByte(data, ':')
		nl := bytes.Index(data, []byte("\r\n"))
		if i < 0 || nl < 0 || i > nl {
			break
		}
		name := string(data[:i])
		if !strings.EqualFold(name, "Received") && !strings.EqualFold(name, "Return-Path") {
			break
		}
		if strings.EqualFold(name, "Received") {
			received++
		}
		// The field ends at the first CRLF not followed by white space.
		end := nl + 2
		for end < len(data) && (data[end] == ' ' || data[end] == '\t') {
			next := bytes.Index(data[end:], []byte("\r\n"))
			if next < 0 {
				end = len(data)
				break
			}
			end += next + 2
		}
		data = data[end:]
	}
	return data, received
}

func paths(es []entity) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.path+" "+e.mediaType)
	}
	return out
}

// clip shortens p for a failure message.
func clip(p []byte) []byte {
	if len(p) > 200 {
		return append(p[:200:200], "…"...)
	}
	return p
}
