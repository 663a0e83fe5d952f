package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// entity is one MIME entity of a message, decoded: its header fields (with
// RFC 2047 encoded-words decoded to their octets) and, for a leaf, its
// content with the transfer encoding undone.
type entity struct {
	path      string // "" for the message, "1", "1.2", "2/" (inside message/rfc822) …
	fields    map[string][]string
	mediaType string
	params    map[string]string
	hasCT     bool // the entity had a Content-Type field
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
		return fmt.Errorf("%s: MIME nesting deeper than 20", path)
	}
	dec := mime.WordDecoder{CharsetReader: identityCharset}
	e := entity{path: path, fields: map[string][]string{}, mediaType: "text/plain"}
	for k, vs := range hdr {
		for _, v := range vs {
			d, err := dec.DecodeHeader(v)
			if err != nil {
				return fmt.Errorf("%s: field %s %q: %w", path, k, v, err)
			}
			e.fields[k] = append(e.fields[k], d)
		}
	}
	if cts := hdr["Content-Type"]; len(cts) > 0 {
		mt, params, err := mime.ParseMediaType(cts[0])
		if err != nil {
			return fmt.Errorf("%s: Content-Type %q: %w", path, cts[0], err)
		}
		e.mediaType, e.params, e.hasCT = mt, params, true
	}
	*out = append(*out, e)
	idx := len(*out) - 1
	switch {
	case strings.HasPrefix(e.mediaType, "multipart/"):
		mr := multipart.NewReader(bytes.NewReader(body), e.params["boundary"])
		for i := 1; ; i++ {
			if i > 1000 {
				return fmt.Errorf("%s: more than 1000 parts", path)
			}
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: part %d: %w", path, i, err)
			}
			b, err := io.ReadAll(p)
			if err != nil {
				return fmt.Errorf("%s: part %d: %w", path, i, err)
			}
			if err := walkEntity(fmt.Sprintf("%s%d", path, i), p.Header, b, out, depth+1); err != nil {
				return err
			}
		}
	case e.mediaType == "message/rfc822":
		m, err := mail.ReadMessage(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%s: message/rfc822: %w", path, err)
		}
		b, err := io.ReadAll(m.Body)
		if err != nil {
			return fmt.Errorf("%s: message/rfc822: %w", path, err)
		}
		return walkEntity(path+"/", map[string][]string(m.Header), b, out, depth+1)
	default:
		b, err := decodeCTE(first(hdr["Content-Transfer-Encoding"]), body)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		(*out)[idx].leaf, (*out)[idx].body = true, b
		return nil
	}
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// decodeCTE undoes a content transfer encoding (RFC 2045 §6).
func decodeCTE(cte string, body []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "quoted-printable":
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return nil, fmt.Errorf("quoted-printable: %w", err)
		}
		return b, nil
	case "base64":
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(body)))
		if err != nil {
			return nil, fmt.Errorf("base64: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown Content-Transfer-Encoding %q", cte)
}

// conversionField reports a field a conversion may add or change (names as
// net/mail canonicalises them); every other field must keep its decoded
// value.
func conversionField(name string) bool {
	switch name {
	case "Content-Transfer-Encoding", "Mime-Version", "Content-Type":
		return true
	}
	return false
}

// sameContent reports every way in which got (the converted message) does
// not decode to the octets of orig: different tree shape, media types,
// header values (after RFC 2047 decoding) or leaf contents.
func sameContent(orig, got []byte) []string {
	oe, err := decodeEntities(orig)
	if err != nil {
		return []string{"original: " + err.Error()}
	}
	ge, err := decodeEntities(got)
	if err != nil {
		return []string{"converted: " + err.Error()}
	}
	var diffs []string
	if len(oe) != len(ge) {
		return []string{fmt.Sprintf("%d MIME entities, want %d", len(ge), len(oe))}
	}
	for i, o := range oe {
		g := ge[i]
		at := o.path
		if at == "" {
			at = "message"
		}
		if g.path != o.path {
			diffs = append(diffs, fmt.Sprintf("entity %d at %q, want %q", i, g.path, o.path))
			continue
		}
		if g.mediaType != o.mediaType {
			diffs = append(diffs, fmt.Sprintf("%s: media type %q, want %q", at, g.mediaType, o.mediaType))
		}
		if o.hasCT {
			for k, v := range o.params {
				if k == "charset" && o.leaf {
					if !strings.EqualFold(g.params[k], v) {
						diffs = append(diffs, fmt.Sprintf("%s: charset %q, want %q", at, g.params[k], v))
					}
					continue
				}
				if g.params[k] != v {
					diffs = append(diffs, fmt.Sprintf("%s: Content-Type parameter %s=%q, want %q", at, k, g.params[k], v))
				}
			}
		}
		for k, vs := range o.fields {
			if conversionField(k) {
				continue
			}
			if fmt.Sprint(g.fields[k]) != fmt.Sprint(vs) {
				diffs = append(diffs, fmt.Sprintf("%s: field %s decodes to %q, want %q", at, k, g.fields[k], vs))
			}
		}
		if o.leaf != g.leaf {
			diffs = append(diffs, fmt.Sprintf("%s: leaf=%v, want %v", at, g.leaf, o.leaf))
		} else if o.leaf && !bytes.Equal(o.body, g.body) {
			diffs = append(diffs, fmt.Sprintf("%s: content decodes to %d octets differing at offset %d, want %d octets\n got: %q\nwant: %q",
				at, len(g.body), firstDiff(o.body, g.body), len(o.body), clip(g.body), clip(o.body)))
		}
	}
	return diffs
}

// firstDiff is the offset of the first octet where a and b differ.
func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func clip(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// wireProblems reports what makes data unfit for a hop without 8BITMIME:
// octets above 127, bare CR or LF, and lines over 998 octets (RFC 5321
// §4.5.3.1.6, RFC 5322 §2.1.1, RFC 6152 §3).
func wireProblems(data []byte) []string {
	var p []string
	lineStart, line := 0, 1
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c > 127:
			p = append(p, fmt.Sprintf("line %d: octet 0x%02X above 127 at offset %d", line, c, i))
		case c == '\r' && (i+1 >= len(data) || data[i+1] != '\n'):
			p = append(p, fmt.Sprintf("line %d: bare CR at offset %d", line, i))
		case c == '\n' && (i == 0 || data[i-1] != '\r'):
			p = append(p, fmt.Sprintf("line %d: bare LF at offset %d", line, i))
		}
		if c == '\n' {
			if n := i - 1 - lineStart; n > 998 {
				p = append(p, fmt.Sprintf("line %d: %d octets, over 998", line, n))
			}
			lineStart, line = i+1, line+1
		}
		if len(p) > 10 {
			return append(p, "…")
		}
	}
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		p = append(p, "content does not end with CRLF")
	}
	return p
}

// stripFirstField splits off the first header field (with its folded
// continuation lines).
func stripFirstField(data []byte) (field, rest []byte) {
	i := 0
	for {
		j := bytes.Index(data[i:], []byte("\r\n"))
		if j < 0 {
			return data, nil
		}
		i += j + 2
		if i >= len(data) || (data[i] != ' ' && data[i] != '\t') {
			return data[:i], data[i:]
		}
	}
}

// checkReceived checks that data starts with Ferry's Received: field for
// queue ID id and returns the rest, which should be the original message.
func checkReceived(t *testing.T, data []byte, id string) []byte {
	t.Helper()
	field, rest := stripFirstField(data)
	f := string(field)
	if !strings.HasPrefix(f, "Received:") {
		t.Errorf("first field is not Received: %q", clip(field))
		return data
	}
	// RFC 5321 §4.4: from the client's EHLO name and address, by this
	// host, with the protocol (RFC 3848), id, then "; date-time".
	if !strings.HasPrefix(f, "Received: from "+clientEHLO+" ([127.0.0.1])") {
		t.Errorf("Received field %q does not start with the client's EHLO name and address", f)
	}
	if !strings.Contains(f, "by "+relayHostname+" ") || !strings.Contains(f, " id "+id) {
		t.Errorf("Received field %q does not name %q and id %s", f, relayHostname, id)
	}
	if !strings.Contains(f, " with ESMTP id ") && !strings.Contains(f, " with UTF8SMTP id ") {
		t.Errorf("Received field %q: want protocol ESMTP, or UTF8SMTP for SMTPUTF8 mail (RFC 3848, RFC 6531 §3.7.3)", f)
	}
	if i := strings.LastIndexByte(f, ';'); i < 0 {
		t.Errorf("Received field %q has no date", f)
	} else if d, err := mail.ParseDate(strings.TrimSpace(f[i+1:])); err != nil {
		t.Errorf("Received field date: %v", err)
	} else if age := time.Since(d); age < -time.Minute || age > 10*time.Minute {
		t.Errorf("Received field date %v is %v from now", d, age)
	}
	return rest
}

func TestWireProblems(t *testing.T) {
	long := bytes.Repeat([]byte("a"), 999)
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"clean", "a\r\nb\r\n", 0},
		{"high octet", "caf\xe9\r\n", 1},
		{"bare LF", "a\nb\r\n", 1},
		{"bare CR", "a\rb\r\n", 1},
		{"998 ok", string(long[:998]) + "\r\n", 0},
		{"999 too long", string(long) + "\r\n", 1},
		{"no final CRLF", "a", 1},
	}
	for _, tc := range tests {
		if got := wireProblems([]byte(tc.in)); len(got) != tc.want {
			t.Errorf("%s: %d problems %q, want %d", tc.name, len(got), got, tc.want)
		}
	}
}

func TestSameContentDetectsDamage(t *testing.T) {
	orig := readTestdata(t, "html-and-text-cyrillic.eml")
	if d := sameContent(orig, orig); len(d) != 0 {
		t.Fatalf("a message differs from itself: %q", d)
	}
	damaged := bytes.Replace(orig, []byte("\xd0\x9f"), []byte("\xd0\x9e"), 1)
	if d := sameContent(orig, damaged); len(d) == 0 {
		t.Error("one changed octet in a leaf went unnoticed")
	}
	subj := readTestdata(t, "8bit-subject.eml")
	// Encoded-words with the space between two words dropped (RFC 2047 §6.2).
	bad := bytes.Replace(subj, []byte("Subject: R\xc3\xa9union \xc3\xa0 10h"),
		[]byte("Subject: =?utf-8?q?R=C3=A9union?= =?utf-8?q?=C3=A0?= 10h"), 1)
	if d := sameContent(subj, bad); len(d) == 0 {
		t.Error("a lost space between encoded-words went unnoticed")
	}
	good := bytes.Replace(subj, []byte("Subject: R\xc3\xa9union \xc3\xa0 10h"),
		[]byte("Subject: =?utf-8?q?R=C3=A9union_?= =?utf-8?q?=C3=A0?= 10h"), 1)
	if d := sameContent(subj, good); len(d) != 0 {
		t.Errorf("a correct encoded Subject is reported: %q", d)
	}
}
