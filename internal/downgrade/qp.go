package downgrade

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Quoted-printable encoding (RFC 2045 §6.7) of our own: the standard
// library's writer turns bare CR and LF into line breaks, which would not
// give the original octets back.

const upperHex = "0123456789ABCDEF"

// qpLiteral marks octets that may stand for themselves (rule 2): printable
// ASCII except '='. Space and tab are literal unless they end a line.
var qpLiteral = func() (t [256]bool) {
	for c := 33; c <= 126; c++ {
		t[c] = c != '='
	}
	return t
}()

// qpFast marks the octets the encoder's fast path copies: the literals,
// space and tab.
var qpFast = func() (t [256]bool) {
	t = qpLiteral
	t[' '], t['\t'] = true, true
	return t
}()

// qpEscape marks the octets that are escaped wherever they stand: all
// but the literals, space, tab and CR (which may start a line break).
var qpEscape = func() (t [256]bool) {
	for c := range t {
		t[c] = !qpFast[c] && c != '\r'
	}
	return t
}()

// qpLineMax is the longest encoded line, CRLF excluded (rule 5).
const qpLineMax = 76

// qpEncoder encodes one body; its buffers are reused from body to body.
type qpEncoder struct {
	in  []byte
	out []byte
}

// encode writes src quoted-printable encoded to w and returns how many
// octets it read and wrote. Lines are at most 76 characters; CRLF pairs are
// hard line breaks; every other CR and LF, '=', control octets, octets above
// 126, white space before a line end, and the first character of a line
// that starts with "." or "From " are escaped. When final is set and the
// content does not end in CRLF, a soft line break ends the output so that
// it ends in CRLF. When whole is not nil it is the entire content and src
// is not read (no copy for a body held in memory).
func (e *qpEncoder) encode(w io.Writer, src io.Reader, whole []byte, final bool) (nIn, nOut int64, err error) {
	if e.in == nil {
		e.in = make([]byte, bufSize)
		e.out = make([]byte, bufSize*3+256)
	}
	in, out := e.in, e.out
	carry := 0       // unprocessed octets kept at the start of in
	col := 0         // characters on the current output line
	endsCRLF := true // the content so far ends in CRLF (or is empty)
	eof := false
	for !eof {
		var n int
		var rerr error
		if whole != nil {
			in, n, rerr = whole, len(whole), io.EOF
		} else {
			n, rerr = io.ReadFull(src, in[carry:])
		}
		nIn += int64(n)
		n += carry
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			eof = true
		default:
			return nIn, nOut, fmt.Errorf("downgrade: reading a body part: %w", rerr)
		}
		// Keep six octets of look-ahead unless this is the end.
		lim, fastLim := n, n-1
		if !eof {
			lim, fastLim = n-6, n-6
		}
		o := 0
		i := 0
		for i < lim {
			if o > len(out)-96 {
				if _, err := w.Write(out[:o]); err != nil {
					return nIn, nOut, fmt.Errorf("downgrade: writing: %w", err)
				}
				nOut += int64(o)
				o = 0
			}
			// Fast path: a run of octets that stand for themselves in the
			// middle of a line (white space only when no CR follows, so
			// that it cannot end a line).
			if col > 0 {
				end := min(fastLim, i+qpLineMax-2-col)
				start := i
				// Eight octets at a time while none is below 0x20, above
				// 0x7e, or '='. Each word is stored before it is tested
				// (out has room to spare); only the good octets count.
				for i+8 <= end {
					w := binary.LittleEndian.Uint64(in[i:])
					binary.LittleEndian.PutUint64(out[o+i-start:], w)
					x, y := w^(lsb*0x7f), w^(lsb*'=')
					// The lowest flagged octet is exact in these tricks.
					if bad := (w | ((w - lsb*0x20) &^ w) | ((x - lsb) &^ x) | ((y - lsb) &^ y)) & msb; bad != 0 {
						i += bits.TrailingZeros64(bad) >> 3
						break
					}
					i += 8
				}
				for i < end {
					c := in[i]
					if !qpFast[c] || (c <= ' ' && in[i+1] == '\r') {
						break
					}
					out[o+i-start] = c
					i++
				}
				if i > start && in[i] == '\r' && in[i-1] == ' ' {
					i-- // a space before a line end is escaped (rule 3)
				}
				o += i - start
				col += i - start
				if i >= lim {
					break
				}
			}
			// Fast path: a run of octets that are always escaped (8-bit
			// text), while the escapes fit on the line.
			if qpEscape[in[i]] && col <= qpLineMax-4 {
				for i < lim && col <= qpLineMax-4 {
					c := in[i]
					if !qpEscape[c] {
						break
					}
					out[o], out[o+1], out[o+2] = '=', upperHex[c>>4], upperHex[c&15]
					o += 3
					col += 3
					i++
				}
				continue
			}
			c := in[i]
			if c == '\r' && i+1 < n && in[i+1] == '\n' {
				out[o], out[o+1] = '\r', '\n'
				o += 2
				i += 2
				col = 0
				continue
			}
			enc := !qpLiteral[c]
			if c == ' ' || c == '\t' {
				// Literal unless it would end a line (rule 3).
				enc = (i+1 == n && eof) || (i+2 < n && in[i+1] == '\r' && in[i+2] == '\n')
			}
			// A line starting with "." or "From " is escaped so that no
			// transport can take it for the end of data or a mailbox
			// separator.
			special := c == '.' || (c == 'F' && i+5 <= n && string(in[i:i+5]) == "From ")
			if !enc && col == 0 && special {
				enc = true
			}
			width := 1
			if enc {
				width = 3
			}
			if col+width > qpLineMax-1 {
				// Room for the token and a soft break's '=' is gone, unless
				// the token exactly fills the line and a CRLF follows.
				if !(col+width == qpLineMax && i+2 < n && in[i+1] == '\r' && in[i+2] == '\n') {
					out[o], out[o+1], out[o+2] = '=', '\r', '\n'
					o += 3
					col = 0
					if !enc && special {
						enc, width = true, 3
					}
				}
			}
			if enc {
				out[o], out[o+1], out[o+2] = '=', upperHex[c>>4], upperHex[c&15]
			} else {
				out[o] = c
			}
			o += width
			col += width
			i++
		}
		if i > 0 {
			endsCRLF = i >= 2 && in[i-2] == '\r' && in[i-1] == '\n'
		}
		if eof && final && !endsCRLF {
			out[o], out[o+1], out[o+2] = '=', '\r', '\n'
			o += 3
		}
		if o > 0 {
			if _, err := w.Write(out[:o]); err != nil {
				return nIn, nOut, fmt.Errorf("downgrade: writing: %w", err)
			}
			nOut += int64(o)
		}
		if !eof {
			carry = copy(in, in[i:n])
		}
	}
	return nIn, nOut, nil
}

// decodeQPLenient writes the octets a tolerant reader takes from a
// quoted-printable body that is not valid 7-bit (RFC 2045 §6.7): "=XX"
// (either case) is the octet, "=" before a line end is a soft break,
// white space (and a CR) before a line end is dropped, anything else, including
// octets above 127 and a stray "=", stands for itself.
func decodeQPLenient(w io.Writer, src *lineSrc, limit int) error {
	var line, out []byte
	for {
		chunk, err := src.next()
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if err == nil {
			line = append(line, chunk...)
			if line[len(line)-1] != '\n' && !src.eof {
				if len(line) > limit {
					return malformed("", "quoted-printable line longer than %d octets", limit)
				}
				continue
			}
		}
		if len(line) == 0 {
			return nil
		}
		content, term := line, []byte(nil)
		switch {
		case len(line) >= 2 && line[len(line)-2] == '\r' && line[len(line)-1] == '\n':
			content, term = line[:len(line)-2], crlf
		case line[len(line)-1] == '\n':
			content, term = line[:len(line)-1], line[len(line)-1:]
		}
		// Trailing white space was added in transit (rule 3), also on a
		// last line without a line end; a CR there is dropped with it, as
		// readers do (the standard library's among them), since a bare CR
		// cannot be quoted-printable content.
		for len(content) > 0 && (content[len(content)-1] == ' ' || content[len(content)-1] == '\t' || content[len(content)-1] == '\r') {
			content = content[:len(content)-1]
		}
		// "=" at the end of a line, or of the body, is a soft line break.
		if len(content) > 0 && content[len(content)-1] == '=' {
			content, term = content[:len(content)-1], nil
		}
		out = out[:0]
		for j := 0; j < len(content); j++ {
			c := content[j]
			if c == '=' && j+2 < len(content) && isHex(content[j+1]) && isHex(content[j+2]) {
				out = append(out, unhex(content[j+1])<<4|unhex(content[j+2]))
				j += 2
				continue
			}
			out = append(out, c)
		}
		out = append(out, term...)
		if _, err := w.Write(out); err != nil {
			return err
		}
		line = line[:0]
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
