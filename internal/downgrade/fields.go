package downgrade

import (
	"bytes"
	"errors"
)

// fixHeader makes every field of h fit a 7-bit transport: 8-bit text is
// encoded where RFC 2047 (or RFC 2231, for MIME parameters) allows it, and
// lines over 998 octets are folded. For an SMTPUTF8 transfer
// (Options.UTF8Headers with EightBit) 8-bit text stays as it is. cs is the charset the entity declares
// (or the message, for a part that declares none), the preferred label
// for 8-bit text valid in it. It records what it changed through c.
func (c *converter) fixHeader(h *header, part, cs string) error {
	for i := range h.fields {
		f := &h.fields[i]
		if bytes.IndexByte(f.raw, 0) >= 0 {
			return malformed(part, "NUL in header field %q", f.name)
		}
		if bytes.Count(f.raw, []byte{'\r'}) != bytes.Count(f.raw, crlf) {
			return malformed(part, "bare CR in header field %q", f.name)
		}
		if has8bit(f.raw) && !(c.opts.EightBit && c.opts.UTF8Headers) {
			if err := c.encodeField(f, part, cs); err != nil {
				return err
			}
			continue
		}
		if longLine(f.raw) {
			if f.lname == "" {
				return malformed(part, "mbox From line longer than %d octets", maxLine)
			}
			raw, ok := fold(f.name, f.value())
			if !ok {
				return malformed(part, "header field %q has a line over %d octets and no white space to fold at", f.name, maxLine)
			}
			f.raw = raw
			c.repair(part, "header field "+f.name+" folded to lines of at most 998 octets")
		}
	}
	return nil
}

// longLine reports whether raw has a line longer than maxLine.
func longLine(raw []byte) bool {
	for len(raw) > maxLine {
		i := bytes.Index(raw, crlf)
		if i < 0 || i > maxLine {
			return true
		}
		raw = raw[i+2:]
	}
	return false
}

// encodeField rewrites a field with 8-bit text; cs is as for fixHeader.
func (c *converter) encodeField(f *field, part, cs string) error {
	if f.lname == "" {
		// The envelope sender of an mbox "From " line: an address.
		return needsUTF8(part, "8-bit octet in the mbox From line")
	}
	v := f.value()
	var nv []byte
	var err error
	switch {
	case isAddressField(f.lname) || f.lname == "list-id":
		// List-Id: a phrase and an angle-bracketed id (RFC 2919 §2).
		nv, err = encodeAddressList(v, cs)
	case f.lname == "keywords":
		nv, err = encodeKeywords(v, cs)
	case f.lname == "content-type" || f.lname == "content-disposition":
		nv, err = encodeParams(v, cs)
	case isStructuredField(f.lname):
		nv, err = encodeComments(v, cs)
	default:
		// Subject, Comments, Content-Description and every optional field
		// are unstructured (RFC 5322 §3.6.5, §3.6.8; RFC 2045 §8).
		nv = encodeUnstructured(v, cs)
	}
	if errors.Is(err, errAddr8bit) {
		return needsUTF8(part, "8-bit octet in an address in field %q", f.name)
	}
	if errors.Is(err, errStructured8bit) {
		return needsUTF8(part, "8-bit octet in structured field %q outside a phrase, comment or parameter value", f.name)
	}
	if err != nil {
		return err
	}
	raw, ok := fold(f.name, nv)
	if !ok {
		return malformed(part, "header field %q cannot be folded to lines of at most %d octets", f.name, maxLine)
	}
	f.raw = raw
	c.rep.Headers = append(c.rep.Headers, HeaderReport{Part: part, Field: f.name})
	c.rep.Changed = true
	return nil
}
