package downgrade

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// b64Group is the input of one 76-column base64 line (RFC 2045 §6.8).
const b64Group = 57

// b64Encoder encodes one body; its buffers are reused from body to body.
type b64Encoder struct {
	in  []byte
	out []byte
}

// encode writes src base64 encoded to w in 76-column lines separated by
// CRLF. When final is set the output ends in CRLF; otherwise the last line
// has none (the caller's delimiter line brings it). When whole is not nil
// it is the entire content and src is not read.
func (e *b64Encoder) encode(w io.Writer, src io.Reader, whole []byte, final bool) (nIn, nOut int64, err error) {
	const groups = 1149 // 57 × 1149 = 65493 octets per read
	if e.in == nil {
		e.in = make([]byte, b64Group*groups)
		e.out = make([]byte, (b64Group*groups/3)*4+groups*2+2)
	}
	first := true
	for {
		in := e.in
		var n int
		var rerr error
		if whole != nil {
			n = min(len(whole), len(e.in))
			in, whole = whole[:n], whole[n:]
			if len(whole) == 0 {
				rerr = io.EOF
			}
		} else {
			n, rerr = io.ReadFull(src, e.in)
		}
		nIn += int64(n)
		o := 0
		for k := 0; k < n; k += b64Group {
			if !first {
				e.out[o], e.out[o+1] = '\r', '\n'
				o += 2
			}
			first = false
			end := min(k+b64Group, n)
			base64.StdEncoding.Encode(e.out[o:], in[k:end])
			o += base64.StdEncoding.EncodedLen(end - k)
		}
		done := rerr != nil
		if done && final && !first {
			e.out[o], e.out[o+1] = '\r', '\n'
			o += 2
		}
		if o > 0 {
			if _, err := w.Write(e.out[:o]); err != nil {
				return nIn, nOut, fmt.Errorf("downgrade: writing: %w", err)
			}
			nOut += int64(o)
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			return nIn, nOut, nil
		default:
			return nIn, nOut, fmt.Errorf("downgrade: reading a body part: %w", rerr)
		}
	}
}

// b64Alphabet marks the base64 alphabet (RFC 2045 Table 1).
var b64Alphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = true
	}
	return t
}()

// decodeB64Lenient writes the octets a tolerant reader takes from a base64
// body (RFC 2045 §6.8): characters outside the alphabet are ignored, and
// "=" ends a group, after which decoding starts afresh. It returns whether
// a dangling character (six bits, no whole octet) was dropped.
func decodeB64Lenient(w io.Writer, r io.Reader) (dropped bool, err error) {
	buf := make([]byte, bufSize)
	q := make([]byte, 0, bufSize)
	dec := make([]byte, bufSize)
	flush := func(all bool) error {
		k := len(q) &^ 3
		if all {
			k = len(q)
			if k%4 == 1 {
				dropped = true
				k--
			}
		}
		n, derr := base64.RawStdEncoding.Decode(dec, q[:k])
		if derr != nil {
			return fmt.Errorf("downgrade: decoding base64: %w", derr)
		}
		if _, err := w.Write(dec[:n]); err != nil {
			return fmt.Errorf("downgrade: writing: %w", err)
		}
		if all {
			q = q[:0]
		} else {
			q = append(q[:0], q[k:]...)
		}
		return nil
	}
	for {
		n, rerr := r.Read(buf)
		for _, c := range buf[:n] {
			if b64Alphabet[c] {
				q = append(q, c)
				if len(q) == cap(q) {
					if err := flush(false); err != nil {
						return dropped, err
					}
				}
			} else if c == '=' && len(q)%4 != 0 {
				if err := flush(true); err != nil {
					return dropped, err
				}
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				return dropped, fmt.Errorf("downgrade: reading a body part: %w", rerr)
			}
			return dropped, flush(true)
		}
	}
}
