package downgrade

import (
	"bytes"
	"encoding/base64"
)

// Encoding 8-bit text where it may already hold encoded-words.

// piece is a stretch of header text: white space ('w'), an existing
// encoded-word ('e') or other text ('t').
type piece struct {
	kind byte
	b    []byte
}

// splitPieces splits text into white space, encoded-words and other text.
// Readers find encoded-words inside longer words too (an encoded-word
// followed by raw 8-bit text, say), so a word is searched for them.
func splitPieces(v []byte) []piece {
	var ps []piece
	for i := 0; i < len(v); {
		j := i
		if isWSP(v[i]) {
			for j < len(v) && isWSP(v[j]) {
				j++
			}
			ps = append(ps, piece{'w', v[i:j]})
			i = j
			continue
		}
		for j < len(v) && !isWSP(v[j]) {
			j++
		}
		word := v[i:j]
		start := 0
		for k := 0; k < len(word); k++ {
			n := encodedWordLen(word[k:])
			if n == 0 {
				continue
			}
			if k > start {
				ps = append(ps, piece{'t', word[start:k]})
			}
			ps = append(ps, piece{'e', fixEncodedWord(word[k : k+n])})
			k += n - 1
			start = k + 1
		}
		if start < len(word) {
			ps = append(ps, piece{'t', word[start:]})
		}
		i = j
	}
	return ps
}

// encodedWordLen returns the length of the encoded-word at the start of
// b, or 0: "=?" charset "?" ("B" | "Q") "?" encoded-text "?=" (RFC 2047
// §2), with B text that decodes as base64. A Q word may hold raw 8-bit
// octets (fixEncodedWord escapes them).
func encodedWordLen(b []byte) int {
	if len(b) < 8 || b[0] != '=' || b[1] != '?' {
		return 0
	}
	i := 2
	for i < len(b) && b[i] != '?' {
		i++
	}
	if i == 2 || i+3 >= len(b) || b[i+2] != '?' {
		return 0
	}
	enc := b[i+1]
	j := i + 3
	for j+1 < len(b) && !(b[j] == '?' && b[j+1] == '=') {
		j++
	}
	if j+1 >= len(b) {
		return 0
	}
	switch enc {
	case 'B', 'b':
		if _, err := base64.StdEncoding.DecodeString(string(b[i+3 : j])); err != nil {
			return 0
		}
	case 'Q', 'q':
	default:
		return 0
	}
	return j + 2
}

// fixEncodedWord escapes raw 8-bit octets in the text of a "Q"
// encoded-word as "=XX", which keeps its label and the octets it stands
// for (RFC 2047 §4.2).
func fixEncodedWord(w []byte) []byte {
	if !has8bit(w) {
		return w
	}
	out := make([]byte, 0, len(w)+16)
	for _, c := range w {
		if c >= 0x80 {
			out = append(out, '=', upperHex[c>>4], upperHex[c&15])
			continue
		}
		out = append(out, c)
	}
	return out
}

// encodeRun turns pieces into encoded-words separated by single spaces:
// existing encoded-words stay as they are, every other stretch (white
// space included, which readers drop between encoded-words) becomes
// encoded-words labelled for its octets. White space that stood between
// two encoded-words, invisible to readers already, is dropped.
func encodeRun(ps []piece, prevEW, nextEW bool, cs string) []byte {
	var out, text []byte
	emit := func(w []byte) {
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = append(out, w...)
	}
	flush := func() {
		if len(text) > 0 {
			emit(encodeWords(text, labelFor(text, cs)))
			text = nil
		}
	}
	for i, p := range ps {
		switch p.kind {
		case 'e':
			flush()
			emit(p.b)
		case 'w':
			before := prevEW
			if i > 0 {
				before = ps[i-1].kind == 'e'
			}
			after := nextEW
			if i+1 < len(ps) {
				after = ps[i+1].kind == 'e'
			}
			if before && after {
				flush()
				continue
			}
			text = append(text, p.b...)
		default:
			text = append(text, p.b...)
		}
	}
	flush()
	return out
}

// encodeText returns text (a display name, the content of a comment) as
// encoded-words only, decoding to what text showed: see encodeRun.
func encodeText(text []byte, cs string) []byte {
	return encodeRun(splitPieces(text), false, false, cs)
}

// encodeUnstructured rewrites an unstructured field body (RFC 5322
// §3.2.5): the span from the first to the last word with raw 8-bit text
// becomes encoded-words (white space inside it is encoded too, since white
// space between encoded-words is dropped on decoding); the text around it
// stays as it is. White space between the span and an encoded-word next
// to it joins the span, or readers would drop it. Raw 8-bit octets inside
// a "Q" encoded-word are escaped in place.
func encodeUnstructured(v []byte, cs string) []byte {
	ps := splitPieces(v)
	first, last := -1, -1 // piece indexes of the span
	for i, p := range ps {
		if p.kind == 't' && has8bit(p.b) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	var out []byte
	if first < 0 {
		for _, p := range ps {
			out = append(out, p.b...)
		}
		return out
	}
	// Widen the span to whole words, and to the start when literal "=?"
	// comes before it: decoders stop looking for encoded-words at such a
	// false start (Go's mime.WordDecoder does).
	for _, p := range ps[:first] {
		if p.kind == 't' && bytes.Contains(p.b, []byte("=?")) {
			first = 0
		}
	}
	for first > 0 && ps[first-1].kind != 'w' {
		first--
	}
	for last+1 < len(ps) && ps[last+1].kind != 'w' {
		last++
	}
	if first >= 2 && ps[first-2].kind == 'e' {
		first-- // the white space after an encoded-word
	}
	if last+2 < len(ps) && ps[last+2].kind == 'e' {
		last++ // the white space before one
	}
	for _, p := range ps[:first] {
		out = append(out, p.b...)
	}
	if len(out) == 0 || !isWSP(out[len(out)-1]) {
		out = append(out, ' ')
	}
	prevEW := first > 0 && ps[first-1].kind == 'e'
	nextEW := last+1 < len(ps) && ps[last+1].kind == 'e'
	out = append(out, encodeRun(ps[first:last+1], prevEW, nextEW, cs)...)
	if last+1 < len(ps) && ps[last+1].kind != 'w' {
		out = append(out, ' ')
	}
	for _, p := range ps[last+1:] {
		out = append(out, p.b...)
	}
	return out
}
