// Package contentscan holds the result of scanning a message's content for
// what a 7-bit transport cannot carry. It is a leaf: package downgrade
// computes it (downgrade.Scan; downgrade.Needs is this type), and package
// smtp keeps it with an envelope (smtp.Envelope.ContentScan) without
// depending on the converter.
package contentscan

// Needs says what in a message a 7-bit transport cannot carry as it is.
type Needs struct {
	EightBit  bool // an octet above 127 anywhere (RFC 6152: needs 8BITMIME)
	NUL       bool // a NUL octet (needs BINARYMIME, RFC 3030)
	BareCR    bool // a CR not followed by LF
	BareLF    bool // an LF not preceded by CR
	LongLines bool // a line longer than 998 octets (RFC 5322 §2.1.1)
	// HeaderEightBit is set when the top-level header has 8-bit text
	// (RFC 6532: needs SMTPUTF8, or encoded-words after conversion).
	HeaderEightBit bool
	// NeedsSMTPUTF8 is set when that 8-bit text sits where no
	// encoded-word may go (an addr-spec, another structured field), so
	// that conversion would fail with downgrade.ErrNeedsSMTPUTF8.
	NeedsSMTPUTF8 bool
	// DKIMSigned is set when the top-level header has a DKIM-Signature
	// field, which conversion invalidates (RFC 6376 §5.3).
	DKIMSigned bool
}

// SevenBit reports whether the message can go to a 7-bit next hop as it
// is.
func (n Needs) SevenBit() bool {
	return !n.EightBit && !n.Binary()
}

// Binary reports whether the message holds what even 8BITMIME cannot
// carry: NULs, bare CR or LF, or lines over 998 octets (RFC 6152 §3 limits
// 8BITMIME to 8-bit lines of at most 998 octets, CRLF-terminated).
func (n Needs) Binary() bool {
	return n.NUL || n.BareCR || n.BareLF || n.LongLines
}
