package testrelay

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

// maxDepth and maxParts bound the MIME tree the decoder walks.
const (
	maxDepth = 20
	maxParts = 1000
)

// Entity is one MIME entity of a message, decoded: its header fields (with
// RFC 2047 encoded-words decoded to their octets) and, for a leaf, its
// content with the transfer encoding undone.
type Entity struct {
	Path           string              // "" for the message, ".1", ".1.2", ".2/" (inside message/rfc822) …
	Fields         map[string][]string // decoded values, by canonical field name
	MediaType      string              // "text/plain" when there is no Content-Type field
	Params         map[string]string   // the Content-Type parameters
	HasContentType bool                // the entity had a Content-Type field
	CTE            string              // the Content-Transfer-Encoding label, normalised; "" when absent
	Leaf           bool                // neither multipart/* nor an enclosed message
	Body           []byte              // a leaf's content, decoded
}

// identityCharset lets mime.WordDecoder hand back an encoded-word's octets
// whatever its charset (including RFC 1428 unknown-8bit).
func identityCharset(_ string, r io.Reader) (io.Reader, error) { return r, nil }

// DecodeEntities walks a message's MIME tree (recursing into multipart/*,
// message/rfc822 and message/global) and returns every entity, decoded,
// in document order.
func DecodeEntities(raw []byte) ([]Entity, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing message: %w", err)
	}
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	var out []Entity
	err = walkEntity("", map[string][]string(m.Header), body, &out, 0)
	return out, err
}

func walkEntity(path string, hdr map[string][]string, body []byte, out *[]Entity, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("entity %q: MIME nesting deeper than %d", path, maxDepth)
	}
	dec := mime.WordDecoder{CharsetReader: identityCharset}
	e := Entity{Path: path, Fields: map[string][]string{}, MediaType: "text/plain"}
	for k, vs := range hdr {
		for _, v := range vs {
			d, err := dec.DecodeHeader(v)
			if err != nil {
				return fmt.Errorf("entity %q: field %s %q: %w", path, k, v, err)
			}
			e.Fields[k] = append(e.Fields[k], d)
		}
	}
	if ct := firstField(hdr, "Content-Type"); ct != "" {
		mt, p, err := mime.ParseMediaType(ct)
		if err != nil {
			return fmt.Errorf("entity %q: Content-Type %q: %w", path, ct, err)
		}
		e.MediaType, e.Params, e.HasContentType = mt, p, true
	}
	e.CTE = cteLabel(firstField(hdr, "Content-Transfer-Encoding"))
	switch {
	case strings.HasPrefix(e.MediaType, "multipart/"):
		*out = append(*out, e)
		mr := multipart.NewReader(bytes.NewReader(body), e.Params["boundary"])
		for i := 1; i <= maxParts; i++ {
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
		return fmt.Errorf("entity %q: more than %d parts", path, maxParts)
	case e.MediaType == "message/rfc822" || e.MediaType == "message/global":
		// RFC 2046 §5.2.1; RFC 6532 §3.7.
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
	e.Leaf = true
	var r io.Reader = bytes.NewReader(body)
	switch e.CTE {
	case "", "7bit", "8bit", "binary":
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r) // skips CR and LF
	default:
		return fmt.Errorf("entity %q: unknown Content-Transfer-Encoding %q", path, e.CTE)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("entity %q: decoding %s: %w", path, e.CTE, err)
	}
	e.Body = b
	*out = append(*out, e)
	return nil
}

// firstField returns the first value of the field name (any case), or "".
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

// mayAdd reports a field a conversion may add to an entity (RFC 2045 §4,
// §5, §6; RFC 1428 for non-MIME mail) or a trace field relays prepend
// (RFC 5321 §4.4); names as net/mail canonicalises them.
func mayAdd(name string) bool {
	switch name {
	case "Mime-Version", "Content-Type", "Content-Transfer-Encoding", "Received":
		return true
	}
	return false
}

// CheckSameDecoded fails the test (without stopping it) for every way in
// which got does not decode to the same MIME tree as orig (see
// DiffDecoded); name prefixes each failure.
func CheckSameDecoded(t testing.TB, name string, orig, got []byte) {
	t.Helper()
	for _, p := range DiffDecoded(orig, got) {
		t.Errorf("%s: %s", name, p)
	}
}

// DiffDecoded returns how got (a converted or relayed copy) differs from
// orig once both are decoded: the same entities and media types; every
// Content-Type parameter of orig kept (a leaf's charset compared without
// case); every leaf's content equal octet for octet after undoing the
// transfer encoding; every header field of orig present with the same
// value after RFC 2047 decoding (Content-Transfer-Encoding and Received
// aside); no field added except those a conversion or a relay may add;
// and no composite entity encoded (RFC 2045 §6.4, RFC 2046 §5.2.1). Nil
// means no difference.
func DiffDecoded(orig, got []byte) []string {
	oe, err := DecodeEntities(orig)
	if err != nil {
		return []string{fmt.Sprintf("decoding the original: %v", err)}
	}
	ge, err := DecodeEntities(got)
	if err != nil {
		return []string{fmt.Sprintf("decoding what arrived: %v\n%s", err, Clip(got))}
	}
	if len(oe) != len(ge) {
		return []string{fmt.Sprintf("%d MIME entities arrived, want %d (%v vs %v)", len(ge), len(oe), paths(ge), paths(oe))}
	}
	var out []string
	for i := range oe {
		o, g := oe[i], ge[i]
		where := fmt.Sprintf("entity %q", o.Path)
		if o.Path != g.Path || o.MediaType != g.MediaType || o.Leaf != g.Leaf {
			out = append(out, fmt.Sprintf("%s: arrived as %q %s (leaf %v), want %q %s (leaf %v)", where, g.Path, g.MediaType, g.Leaf, o.Path, o.MediaType, o.Leaf))
			if o.Path != g.Path {
				continue
			}
		}
		if o.HasContentType {
			out = append(out, diffParams(where, o, g)...)
		}
		if o.Leaf && g.Leaf && !bytes.Equal(o.Body, g.Body) {
			out = append(out, fmt.Sprintf("%s: decoded content differs from the original at offset %d (%d octets, want %d)\ngot:  %q\nwant: %q",
				where, FirstDiff(g.Body, o.Body), len(g.Body), len(o.Body), Clip(g.Body), Clip(o.Body)))
		}
		if !o.Leaf && g.CTE != "" && g.CTE != "7bit" && g.CTE != "8bit" && g.CTE != "binary" {
			out = append(out, fmt.Sprintf("%s: composite entity labelled %q; it must not be encoded (RFC 2045 §6.4)", where, g.CTE))
		}
		for k, ov := range o.Fields {
			if k == "Content-Transfer-Encoding" || k == "Received" {
				continue
			}
			if gv := g.Fields[k]; !slices.Equal(ov, gv) {
				out = append(out, fmt.Sprintf("%s: field %s decodes to %q, want %q", where, k, gv, ov))
			}
		}
		for k := range g.Fields {
			if _, ok := o.Fields[k]; !ok && !mayAdd(k) {
				out = append(out, fmt.Sprintf("%s: field %s added: %q", where, k, g.Fields[k]))
			}
		}
	}
	return out
}

// diffParams reports the Content-Type parameters of o that g lost or
// changed; a leaf's charset may change case only (RFC 2046 §4.1.2).
func diffParams(where string, o, g Entity) []string {
	var out []string
	for k, v := range o.Params {
		if k == "charset" && o.Leaf {
			if !strings.EqualFold(g.Params[k], v) {
				out = append(out, fmt.Sprintf("%s: charset %q, want %q", where, g.Params[k], v))
			}
			continue
		}
		if g.Params[k] != v {
			out = append(out, fmt.Sprintf("%s: Content-Type parameter %s=%q, want %q", where, k, g.Params[k], v))
		}
	}
	return out
}

func paths(es []Entity) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Path+" "+e.MediaType)
	}
	return out
}
