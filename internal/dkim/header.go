package dkim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
)

// Field is one header field as it appears in the message: its name and
// the raw octets of the whole field, folding and final CRLF included.
type Field struct {
	Name string
	Raw  string
}

// Value returns the field's value: what follows the colon, unfolded and
// trimmed.
func (f Field) Value() string {
	_, v, _ := strings.Cut(f.Raw, ":")
	v = strings.ReplaceAll(v, "\r\n", "")
	return strings.TrimSpace(v)
}

// maxHeader bounds the header ReadHeader reads (the body is streamed).
const maxHeader = 1 << 20

// ErrHeaderTooLong is returned by ReadHeader for a header over 1 MiB.
var ErrHeaderTooLong = errors.New("header longer than 1 MiB")

// ReadHeader reads the message header from br up to and including the
// empty line that ends it, and returns the fields and the raw octets read.
// A message without a body (no empty line) is fine.
func ReadHeader(br *bufio.Reader) ([]Field, []byte, error) {
	var raw bytes.Buffer
	var fields []Field
	for {
		line, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("reading header: %w", err)
		}
		raw.WriteString(line)
		if raw.Len() > maxHeader {
			return nil, nil, ErrHeaderTooLong
		}
		switch {
		case line == "\r\n" || line == "\n":
			return fields, raw.Bytes(), nil
		case line == "":
		case (line[0] == ' ' || line[0] == '\t') && len(fields) > 0:
			fields[len(fields)-1].Raw += line
		default:
			name, _, _ := strings.Cut(line, ":")
			fields = append(fields, Field{Name: strings.TrimSpace(name), Raw: line})
		}
		if err == io.EOF {
			return fields, raw.Bytes(), nil
		}
	}
}

// count returns how many fields are named name (case-insensitively).
func count(fields []Field, name string) int {
	n := 0
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			n++
		}
	}
	return n
}

// FromDomain returns the domain of the (first) author address in the From
// field (RFC 5322 §3.6.2), lower case; "" when there is none to be found.
func FromDomain(fields []Field) string {
	for _, f := range fields {
		if !strings.EqualFold(f.Name, "From") {
			continue
		}
		p := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil }}}
		v := f.Value()
		if list, err := p.ParseList(v); err == nil && len(list) > 0 {
			return domainOf(list[0].Address)
		}
		// Unparseable (e.g. raw 8-bit text): the last "@" of the
		// angle-addr, or of the whole value.
		if i := strings.LastIndexByte(v, '<'); i >= 0 {
			v = v[i+1:]
			if j := strings.IndexByte(v, '>'); j >= 0 {
				v = v[:j]
			}
		}
		return domainOf(strings.TrimSpace(v))
	}
	return ""
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

// Tags parses a DKIM-style tag list (RFC 6376 §3.2) such as the value of a
// DKIM-Signature field: names to values, whitespace removed around both
// (and inside b= and bh=).
func Tags(value string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(value, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		v = strings.Join(strings.Fields(v), "")
		out[k] = v
	}
	return out
}

// WithoutFields returns the message read from r with the header fields
// whose raw text is in drop left out (each at most once), the rest of the
// header and the body as they are.
func WithoutFields(r io.Reader, drop []string) io.Reader {
	br := bufio.NewReaderSize(r, 32<<10)
	fields, head, err := ReadHeader(br)
	if err != nil {
		return io.MultiReader(bytes.NewReader(head), br)
	}
	left := map[string]int{}
	for _, d := range drop {
		left[d]++
	}
	var out bytes.Buffer
	for _, f := range fields {
		if left[f.Raw] > 0 {
			left[f.Raw]--
			continue
		}
		out.WriteString(f.Raw)
	}
	// The empty line (or nothing, for a header-only message).
	n := 0
	for _, f := range fields {
		n += len(f.Raw)
	}
	out.Write(head[n:])
	return io.MultiReader(&out, br)
}

// SignedBy returns the raw DKIM-Signature fields made with the key named
// name ("selector._domainkey.domain").
func SignedBy(fields []Field, name string) []string {
	var out []string
	for _, f := range fields {
		if strings.EqualFold(f.Name, "DKIM-Signature") {
			t := Tags(f.Value())
			if t["s"]+"._domainkey."+strings.ToLower(t["d"]) == name {
				out = append(out, f.Raw)
			}
		}
	}
	return out
}
