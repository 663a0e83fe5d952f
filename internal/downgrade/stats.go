package downgrade

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// maxLine is the longest line SMTP may carry, CRLF excluded
// (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1).
const maxLine = 998

// stats classifies the octets of a body written to it in chunks: what makes
// it unfit for a 7-bit transport, and how much quoted-printable would have
// to escape.
type stats struct {
	n       int64
	high    int64 // octets > 127
	nul     int64
	bareCR  int64
	bareLF  int64
	long    int64 // lines longer than maxLine
	lineLen int64
	prevCR  bool // the last octet seen was a CR whose fate is open

	checkUTF8 bool
	utf8Bad   bool
	utf8Tail  []byte // an incomplete UTF-8 sequence at the end of a chunk
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// Write records p; it never fails. Octets above 127 and NULs are counted
// eight at a time; the line structure is checked at each LF found with
// bytes.IndexByte, and CRs are counted with bytes.Count, so that the cost
// is a few instructions per eight octets plus a few per line.
func (s *stats) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.n += int64(len(p))
	if s.checkUTF8 && !s.utf8Bad {
		s.trackUTF8(p)
	}
	s.countHigh(p)
	crs := int64(bytes.Count(p, []byte{'\r'}))
	pairs := int64(0) // CRs of this chunk that end a line
	if s.prevCR && p[0] != '\n' {
		s.bareCR++ // the CR that ended the previous chunk stands alone
	}
	start := 0 // where the current line's octets in p begin
	for rest := p; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		at := len(p) - len(rest) + i // index of the LF in p
		n := s.lineLen + int64(at-start)
		switch {
		case at > 0 && p[at-1] == '\r':
			pairs++
			n--
		case at == 0 && s.prevCR:
			n--
		default:
			s.bareLF++
		}
		if n > maxLine {
			s.long++
		}
		s.lineLen = 0
		start = at + 1
		rest = rest[i+1:]
	}
	s.lineLen += int64(len(p) - start)
	s.prevCR = p[len(p)-1] == '\r'
	open := int64(0)
	if s.prevCR {
		open = 1 // its fate is decided by the next chunk
	}
	s.bareCR += crs - pairs - open
	return len(p), nil
}

// countHigh counts octets above 127 and NULs in p.
func (s *stats) countHigh(p []byte) {
	var high int
	for len(p) >= 32 {
		w1 := binary.LittleEndian.Uint64(p)
		w2 := binary.LittleEndian.Uint64(p[8:])
		w3 := binary.LittleEndian.Uint64(p[16:])
		w4 := binary.LittleEndian.Uint64(p[24:])
		high += bits.OnesCount64(w1&msb) + bits.OnesCount64(w2&msb) + bits.OnesCount64(w3&msb) + bits.OnesCount64(w4&msb)
		// (w - 0x01…01) &^ w has a high bit set exactly when w has a
		// zero octet (as a test; which octet is not exact).
		if ((w1-lsb)&^w1|(w2-lsb)&^w2|(w3-lsb)&^w3|(w4-lsb)&^w4)&msb != 0 {
			s.nul += int64(bytes.Count(p[:32], []byte{0}))
		}
		p = p[32:]
	}
	for _, c := range p {
		if c >= 0x80 {
			high++
		} else if c == 0 {
			s.nul++
		}
	}
	s.high += int64(high)
}

func (s *stats) trackUTF8(p []byte) {
	if len(s.utf8Tail) > 0 {
		need := 4 - len(s.utf8Tail)
		k := min(need, len(p))
		buf := append(append([]byte{}, s.utf8Tail...), p[:k]...)
		r, size := utf8.DecodeRune(buf)
		if r == utf8.RuneError && size <= 1 {
			if !utf8.FullRune(buf) && k == len(p) {
				s.utf8Tail = buf
				return
			}
			s.utf8Bad = true
			return
		}
		p = p[size-len(s.utf8Tail):]
		s.utf8Tail = nil
	}
	// Keep an incomplete sequence at the end for the next chunk.
	cut := len(p)
	for j := len(p) - 1; j >= 0 && j >= len(p)-3; j-- {
		if utf8.RuneStart(p[j]) {
			if !utf8.FullRune(p[j:]) {
				cut = j
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		s.utf8Bad = true
		return
	}
	if cut < len(p) {
		s.utf8Tail = append([]byte{}, p[cut:]...)
	}
}

// finish closes the last line.
func (s *stats) finish() {
	if s.prevCR {
		s.bareCR++
		s.prevCR = false
	}
	if s.lineLen > maxLine {
		s.long++
	}
	s.lineLen = 0
	if len(s.utf8Tail) > 0 {
		s.utf8Bad = true
	}
}

// dirty reports whether the body cannot travel as 7-bit.
func (s *stats) dirty() bool {
	return s.high+s.nul+s.bareCR+s.bareLF+s.long > 0
}

// validUTF8 reports whether the body (with checkUTF8 set) is valid UTF-8.
func (s *stats) validUTF8() bool { return !s.utf8Bad }

// escapeShare is the share of octets quoted-printable must escape, apart
// from '=' and trailing white space, which are rare in text.
func (s *stats) escapeShare() float64 {
	if s.n == 0 {
		return 0
	}
	return float64(s.high+s.nul+s.bareCR+s.bareLF) / float64(s.n)
}
