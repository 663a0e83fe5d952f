package downgrade

import (
	"bytes"
	"encoding/binary"
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

// Write records p; it never fails.
func (s *stats) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.checkUTF8 && !s.utf8Bad {
		s.trackUTF8(p)
	}
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		var seg []byte
		if i < 0 {
			seg, rest = rest, nil
		} else {
			seg, rest = rest[:i], rest[i+1:]
		}
		if len(seg) > 0 {
			if s.prevCR { // a CR ended the previous chunk and no LF follows it
				s.bareCR++
				s.lineLen++
				s.prevCR = false
			}
			body := seg
			if seg[len(seg)-1] == '\r' {
				body = seg[:len(seg)-1]
			}
			s.scanRun(body)
			s.lineLen += int64(len(body))
			if len(body) < len(seg) {
				if i < 0 {
					s.prevCR = true
				} else {
					// CR LF: a line end.
				}
			}
			if i >= 0 && len(body) == len(seg) {
				s.bareLF++
			}
		} else if i >= 0 && !s.prevCR {
			s.bareLF++
		}
		if i >= 0 {
			if s.lineLen > maxLine {
				s.long++
			}
			s.lineLen = 0
			s.prevCR = false
		}
	}
	return len(p), nil
}

// scanRun counts high octets, NULs and CRs in b, which holds no LF. It tests
// eight octets at a time and looks at single octets only in words that hold
// something of interest.
func (s *stats) scanRun(b []byte) {
	for len(b) >= 16 {
		w1 := binary.LittleEndian.Uint64(b)
		w2 := binary.LittleEndian.Uint64(b[8:])
		x1, x2 := w1^(lsb*'\r'), w2^(lsb*'\r')
		f := w1 | w2 | ((w1 - lsb) &^ w1) | ((w2 - lsb) &^ w2) | ((x1 - lsb) &^ x1) | ((x2 - lsb) &^ x2)
		if f&msb != 0 {
			s.scanSlow(b[:16])
		}
		b = b[16:]
	}
	s.scanSlow(b)
}

func (s *stats) scanSlow(b []byte) {
	for _, c := range b {
		switch {
		case c >= 0x80:
			s.high++
		case c == 0:
			s.nul++
		case c == '\r':
			s.bareCR++
		}
	}
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
		s.lineLen++
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
