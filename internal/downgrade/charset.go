package downgrade

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/ianaindex"
)

// labelFor names the charset to label 8-bit text with in an encoded-word
// (RFC 2047 §2) or an RFC 2231 parameter value, declared being the
// charset the entity (or the message) declares, "" if none:
//   - utf-8 when the text is valid UTF-8: a multi-octet UTF-8 sequence
//     rarely forms by chance in another charset, so this is the best guess
//     even under another declared charset (RFC 6532 §3.2 makes UTF-8 the
//     charset of 8-bit header text);
//   - the declared charset when it is a single-octet one (ISO 8859-x,
//     windows-125x, KOI8) in which every octet of the text is a graphic
//     character (no C1 control, nothing unassigned);
//   - unknown-8bit (RFC 1428) otherwise, the last resort: many readers
//     cannot decode it, but the octets travel unchanged.
//
// Multi-octet charsets other than UTF-8 are never used as labels, since
// encodeWords could split their characters.
func labelFor(text []byte, declared string) string {
	if utf8.Valid(text) {
		return "utf-8"
	}
	declared = strings.ToLower(declared)
	if declared != "" && declared != "utf-8" && declared != "us-ascii" && validSingleOctet(text, declared) {
		return declared
	}
	return "unknown-8bit"
}

// validSingleOctet reports whether cs is a single-octet charset known to
// IANA in which every 8-bit octet of text is a graphic character.
func validSingleOctet(text []byte, cs string) bool {
	enc, err := ianaindex.MIME.Encoding(cs)
	if err != nil || enc == nil {
		return false
	}
	cm, ok := enc.(*charmap.Charmap)
	if !ok {
		return false
	}
	for _, c := range text {
		if c < 0x80 {
			continue
		}
		if r := cm.DecodeByte(c); r == utf8.RuneError || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
