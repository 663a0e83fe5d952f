package downgrade

import "strings"

// The 8BITMIME target (Options.EightBit): for a next hop that offers
// 8BITMIME (RFC 6152) but not BINARYMIME (RFC 3030), only what that hop
// cannot take is changed.

// unfit reports whether a body with statistics st cannot travel as it is
// to the target: for 7-bit, an octet above 127, a NUL, a bare CR or LF or a
// line over 998 octets; for 8BITMIME the same less octets above 127, which
// that hop takes (RFC 6152 §2: lines of at most 998 octets, no NUL, CR and
// LF only as a line end).
func (c *converter) unfit(st *stats) bool {
	if c.opts.EightBit {
		return st.nul+st.bareCR+st.bareLF+st.long > 0
	}
	return st.dirty()
}

// composedCTE is the label a composite entity gets when its own one does
// not fit the output (RFC 2045 §6.4: a composite is labelled for the
// widest of its parts): "8bit" for the 8BITMIME target, where 8-bit parts
// are kept, else "7bit".
func (c *converter) composedCTE() string {
	if c.opts.EightBit {
		return "8bit"
	}
	return "7bit"
}

// fitsLabel reports whether a composite's label may stay: "7bit" (or none)
// always; "8bit" too for the 8BITMIME target.
func (c *converter) fitsLabel(label string) bool {
	return label == "" || label == "7bit" || c.opts.EightBit && label == "8bit"
}

// reason names what in a body with statistics st the target cannot take,
// for the Report: "8-bit" (7-bit target only), "NUL", "bare CR",
// "bare LF", "long lines", joined with " and ".
func (c *converter) reason(st *stats) string {
	var buf [5]string // on the stack: only a joined result allocates
	r := buf[:0]
	if st.high > 0 && !c.opts.EightBit {
		r = append(r, "8-bit")
	}
	if st.nul > 0 {
		r = append(r, "NUL")
	}
	if st.bareCR > 0 {
		r = append(r, "bare CR")
	}
	if st.bareLF > 0 {
		r = append(r, "bare LF")
	}
	if st.long > 0 {
		r = append(r, "long lines")
	}
	return strings.Join(r, " and ")
}

// keepLeaf writes a leaf that the 8BITMIME target takes as it is: its
// header and body byte for byte, except that a "binary" label becomes
// "8bit" (the hop lacks BINARYMIME, RFC 3030 §3, and the body is valid
// 8-bit data: no NUL, CR and LF only together, lines within 998 octets).
// It counts a leaf kept with 8-bit octets in Report.Kept8Bit.
func (c *converter) keepLeaf(h *header, path string, mt mediaType, label string, isMsg bool) {
	if label != "binary" {
		if c.st.high > 0 {
			c.rep.Kept8Bit++
		}
		return
	}
	if isMsg && h.get("mime-version") == nil {
		h.fields = append(h.fields, field{raw: []byte("MIME-Version: 1.0\r\n"), name: "MIME-Version", lname: "mime-version"})
	}
	h.set("content-transfer-encoding", "Content-Transfer-Encoding", []byte("Content-Transfer-Encoding: 8bit\r\n"))
	c.rep.Changed = true
	c.rep.Parts = append(c.rep.Parts, PartReport{
		Path: path, ContentType: mt.full, OldCTE: label, NewCTE: "8bit",
		Reason: "no BINARYMIME", BytesIn: c.body.n, BytesOut: c.body.n,
	})
}
