package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// BarePolicy says what the DATA reader does with a bare CR or bare LF in
// content (Postfix's smtpd_forbid_bare_newline).
type BarePolicy int

// Bare CR/LF policies.
const (
	BareNormalize BarePolicy = iota // treat a bare LF or CR as CRLF
	BareReject                      // fail the message with ErrBareNewline
)

// DataOptions configure a DATA reader.
type DataOptions struct {
	MaxSize int64 // 0: no limit; beyond it the rest is drained and ErrTooLarge returned
	Bare    BarePolicy
}

// Errors from the DATA and BDAT readers.
var (
	ErrTooLarge    = errors.New("smtp: message exceeds the size limit")
	ErrBareNewline = errors.New("smtp: bare CR or LF in message content")
)

// States of the DATA reader. "Line start" means just after a line end; the
// line start after a real CRLF (or at the start of the data, which begins
// logically after the CRLF ending the DATA command) is the only place where
// a "." CRLF line ends the data.
const (
	dMid       = iota // inside a line
	dCR               // after a CR whose successor is not yet known
	dBOL              // line start after CRLF or at the start of the data
	dBOLBare          // line start after a bare LF or bare CR
	dDot              // "." at a dBOL line start
	dDotBare          // "." at a dBOLBare line start
	dDotCR            // "." CR at a dBOL line start
	dDotCRBare        // "." CR at a dBOLBare line start
)

// dataReader reads DATA content; see NewDataReader.
type dataReader struct {
	br      *bufio.Reader
	opts    DataOptions
	state   int
	in      int64  // input octets consumed
	out     int64  // output octets returned
	discard bool   // draining after a size or bare-newline failure
	final   error  // what to return at the end of data (nil: io.EOF)
	bare    string // "LF" or "CR" once a bare newline was seen
	bareAt  int64  // input offset of the first bare newline
	err     error  // sticky result once the data has ended or failed
	left    []byte // output produced for a short Read not yet returned
	small   [64]byte
	scratch []byte // output sink while draining
}

// NewDataReader returns a reader of DATA content after the 354 reply
// (RFC 5321 §4.1.1.4, §4.5.2). It reads from r up to and including the
// "<CRLF>.<CRLF>" that ends the data and not one octet further, so the
// command after it stays in r.
//
// Only "<CRLF>.<CRLF>" ends the data; "<LF>.<LF>", "<CR>.<CR>",
// "<LF>.<CRLF>", "<CRLF>.<LF>" and every other mix are content. A line that
// starts with "." and has more on it loses that dot (dot-unstuffing); a
// line that is just "." but does not end the data keeps it. Lines may be of
// any length.
//
// The output is canonical: every line ends in CRLF. A bare CR or bare LF is
// a line end; with BareNormalize it is returned as CRLF, with BareReject the
// reader drains the rest of the data and then fails with an error wrapping
// ErrBareNewline that says where the first one was. When the output would
// exceed opts.MaxSize octets, the rest is drained and the reader fails with
// an error wrapping ErrTooLarge, so the session stays in step with the
// client either way. At the end of data Read returns io.EOF. Errors from r
// are returned wrapped; the connection ending before the end of data is
// io.ErrUnexpectedEOF.
func NewDataReader(r *bufio.Reader, opts DataOptions) io.Reader {
	return &dataReader{br: r, opts: opts, state: dBOL}
}

// Read implements io.Reader.
func (d *dataReader) Read(p []byte) (int, error) {
	if len(d.left) > 0 {
		n := copy(p, d.left)
		d.left = d.left[n:]
		return n, nil
	}
	if d.err != nil {
		return 0, d.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) < len(d.small) {
		n, err := d.read(d.small[:])
		c := copy(p, d.small[:n])
		d.left = d.small[c:n]
		if len(d.left) > 0 {
			return c, nil
		}
		return c, err
	}
	return d.read(p)
}

// read fills p (at least 64 octets long) with output, consuming input.
func (d *dataReader) read(p []byte) (int, error) {
	for {
		if d.br.Buffered() == 0 {
			if _, err := d.br.Peek(1); err != nil {
				d.err = d.readErr(err)
				return 0, d.err
			}
		}
		buf, _ := d.br.Peek(d.br.Buffered())
		dst := p
		if d.discard {
			if d.scratch == nil {
				d.scratch = make([]byte, 4096)
			}
			dst = d.scratch
		}
		nd, ns, end := d.step(dst, buf)
		d.in += int64(ns)
		if _, err := d.br.Discard(ns); err != nil {
			d.err = fmt.Errorf("smtp: reading message data: %w", err)
			return 0, d.err
		}
		if d.discard {
			nd = 0
		} else {
			if d.opts.MaxSize > 0 && d.out+int64(nd) > d.opts.MaxSize {
				nd = int(d.opts.MaxSize - d.out)
				if nd > 0 && p[nd-1] == '\r' {
					nd-- // never return half a CRLF
				}
				d.fail(fmt.Errorf("%w (limit %d octets)", ErrTooLarge, d.opts.MaxSize))
			}
			d.out += int64(nd)
			if d.bare != "" && d.opts.Bare == BareReject {
				d.fail(fmt.Errorf("%w: bare %s at octet %d of the message data", ErrBareNewline, d.bare, d.bareAt))
			}
		}
		if end {
			d.err = io.EOF
			if d.final != nil {
				d.err = d.final
			}
			if nd > 0 {
				return nd, nil
			}
			return 0, d.err
		}
		if nd > 0 {
			return nd, nil
		}
	}
}

// fail records the error to return at the end of data and starts draining.
func (d *dataReader) fail(err error) {
	if d.final == nil {
		d.final = err
	}
	d.discard = true
}

// readErr wraps an error from the underlying reader.
func (d *dataReader) readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("smtp: connection closed before <CRLF>.<CRLF> after %d octets of message data: %w",
			d.in, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("smtp: reading message data after %d octets: %w", d.in, err)
}

// noteBare records a bare newline at input offset at.
func (d *dataReader) noteBare(kind string, at int64) {
	if d.bare == "" {
		d.bare, d.bareAt = kind, at
	}
}

// step runs the state machine over src, writing output to dst (at least 3
// octets long). It returns the octets written and consumed and whether the
// end of data was reached (the terminating ".\r\n" consumed, not written).
func (d *dataReader) step(dst, src []byte) (nd, ns int, end bool) {
	for ns < len(src) && len(dst)-nd >= 3 {
		switch d.state {
		case dMid:
			// Copy up to the next CR or LF, keeping room for a CRLF.
			seg := src[ns:]
			if room := len(dst) - nd - 2; len(seg) > room {
				seg = seg[:room]
			}
			cr := bytes.IndexByte(seg, '\r')
			lfIn := seg
			if cr >= 0 {
				lfIn = seg[:cr]
			}
			if lf := bytes.IndexByte(lfIn, '\n'); lf >= 0 {
				nd += copy(dst[nd:], seg[:lf])
				d.noteBare("LF", d.in+int64(ns+lf))
				ns += lf + 1
				dst[nd], dst[nd+1] = '\r', '\n'
				nd += 2
				d.state = dBOLBare
				continue
			}
			if cr >= 0 {
				nd += copy(dst[nd:], seg[:cr])
				ns += cr + 1
				if ns < len(src) && src[ns] == '\n' { // the usual CRLF
					ns++
					dst[nd], dst[nd+1] = '\r', '\n'
					nd += 2
					d.state = dBOL
					continue
				}
				d.state = dCR
				continue
			}
			nd += copy(dst[nd:], seg)
			ns += len(seg)
		case dCR:
			dst[nd], dst[nd+1] = '\r', '\n'
			nd += 2
			if src[ns] == '\n' {
				ns++
				d.state = dBOL
				continue
			}
			d.noteBare("CR", d.in+int64(ns)-1)
			d.state = dBOLBare
		case dBOL, dBOLBare:
			if src[ns] != '.' {
				d.state = dMid
				continue
			}
			ns++
			d.state += dDot - dBOL // dBOL→dDot, dBOLBare→dDotBare
		case dDot, dDotBare:
			switch src[ns] {
			case '\r':
				ns++
				d.state += dDotCR - dDot
			case '\n': // "." then a bare LF: a lone dot, kept
				d.noteBare("LF", d.in+int64(ns))
				ns++
				nd += copy(dst[nd:], ".\r\n")
				d.state = dBOLBare
			default: // dot-unstuffing: the dot is dropped
				d.state = dMid
			}
		case dDotCR, dDotCRBare:
			if src[ns] == '\n' {
				ns++
				if d.state == dDotCR {
					d.state = dBOL
					return nd, ns, true
				}
				nd += copy(dst[nd:], ".\r\n")
				d.state = dBOL
				continue
			}
			// "." then a bare CR: a lone dot, kept.
			d.noteBare("CR", d.in+int64(ns)-1)
			nd += copy(dst[nd:], ".\r\n")
			d.state = dBOLBare
		}
	}
	return nd, ns, false
}
