package downgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// bodySink feeds a spool and its statistics.
type bodySink struct {
	sp *spool
	st *stats
}

func (b *bodySink) Write(p []byte) (int, error) {
	b.st.Write(p)
	return b.sp.Write(p)
}

var lf = []byte("\n")

// scanToSpool reads a body into c.body, with its statistics in c.st, up to
// a delimiter line of stack or the end of input.
func (c *converter) scanToSpool(stack []string, checkUTF8 bool) (delim, error) {
	c.body.reset()
	c.st = stats{checkUTF8: checkUTF8}
	d, err := c.scanBody(stack, &bodySink{sp: &c.body, st: &c.st})
	c.st.finish()
	return d, err
}

// scanBody copies body content to sink up to a delimiter line of any
// boundary in stack (the innermost first), or to the end of input. The
// line end before a delimiter line is not content (RFC 2046 §5.1.1).
func (c *converter) scanBody(stack []string, sink io.Writer) (delim, error) {
	if len(stack) == 0 {
		return delim{idx: -1}, c.src.writeRest(sink)
	}
	var pend []byte // the withheld line end of the previous line
	atStart, heldCR := true, false
	for {
		line, err := c.src.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return delim{}, err
			}
			if heldCR {
				sink.Write([]byte{'\r'})
			}
			if pend != nil {
				sink.Write(pend)
			}
			return delim{idx: -1}, nil
		}
		if heldCR {
			heldCR = false
			if line[0] == '\n' {
				// The CR that ended the previous chunk and this LF are a
				// line end.
				pend, atStart = crlf, true
				if len(line) == 1 {
					continue
				}
				sink.Write(pend)
				pend = nil
				line = line[1:]
			} else {
				sink.Write([]byte{'\r'})
			}
		}
		if atStart && len(line) >= 2 && line[0] == '-' && line[1] == '-' {
			if idx, closing, n, ok := matchDelim(line, stack); ok {
				d := delim{idx: idx, close: closing, term: pend != nil}
				if bytes.Equal(pend, lf) {
					c.repair("", "bare LF before a delimiter line made CRLF")
				}
				d.line = append([]byte{}, line[:n]...)
				if n < len(line) {
					if len(line)-n == 1 {
						c.repair("", "bare LF after a delimiter line made CRLF")
					}
					d.line = append(d.line, crlf...)
				}
				return d, nil
			}
		}
		if pend != nil {
			sink.Write(pend)
			pend = nil
		}
		switch n := len(line); {
		case line[n-1] == '\n' && n >= 2 && line[n-2] == '\r':
			sink.Write(line[:n-2])
			pend, atStart = crlf, true
		case line[n-1] == '\n':
			sink.Write(line[:n-1])
			pend, atStart = lf, true
		case line[n-1] == '\r' && !c.src.eof:
			sink.Write(line[:n-1])
			heldCR, atStart = true, false
		default:
			sink.Write(line)
			atStart = false
		}
	}
}

// matchDelim reports whether line is a delimiter or close-delimiter line
// of a boundary in stack: "--" boundary ["--"] optional white space and a
// line end (RFC 2046 §5.1.1). n is the length of the line without its line
// end.
func matchDelim(line []byte, stack []string) (idx int, closing bool, n int, ok bool) {
	if len(line) < 2 || line[0] != '-' || line[1] != '-' {
		return 0, false, 0, false
	}
	for k := len(stack) - 1; k >= 0; k-- {
		b := stack[k]
		if len(line) < 2+len(b) || string(line[2:2+len(b)]) != b {
			continue
		}
		rest := line[2+len(b):]
		closing := bytes.HasPrefix(rest, []byte("--"))
		if closing {
			rest = rest[2:]
		}
		rest = trimLeftWSP(rest)
		switch {
		case len(rest) == 0:
			return k, closing, len(line), true
		case len(rest) == 1 && rest[0] == '\n':
			return k, closing, len(line) - 1, true
		case len(rest) == 2 && rest[0] == '\r' && rest[1] == '\n':
			return k, closing, len(line) - 2, true
		}
	}
	return 0, false, 0, false
}

// writeSpool writes a preamble or epilogue held in c.body. Readers ignore
// both (RFC 2046 §5.1.1), so when one is unfit for the target its
// offending octets are replaced by '?' (a bare LF becomes CRLF) and long
// lines are broken, a repair rather than a failure. For the 8BITMIME
// target octets above 127 are not offending.
func (c *converter) writeSpool(path, what string) error {
	if !c.unfit(&c.st) {
		return c.body.writeTo(c.w)
	}
	keep8 := c.opts.EightBit
	if keep8 {
		c.repair(path, what+" not fit for 8BITMIME: offending octets replaced by '?'")
	} else {
		c.repair(path, what+" not 7-bit: offending octets replaced by '?'")
	}
	r, err := c.body.reader()
	if err != nil {
		return err
	}
	br := bufio.NewReader(r)
	col := 0
	prevCR := false
	for {
		b, err := br.ReadByte()
		if err != nil {
			break
		}
		if prevCR {
			prevCR = false
			if b == '\n' {
				c.w.Write(crlf)
				col = 0
				continue
			}
			c.w.WriteByte('?')
			col++
		}
		switch {
		case b == '\r':
			prevCR = true
			continue
		case b == '\n':
			c.w.Write(crlf)
			col = 0
			continue
		case b >= 0x80 && !keep8 || b == 0:
			b = '?'
		}
		if col >= maxLine {
			c.w.Write(crlf)
			col = 0
		}
		c.w.WriteByte(b)
		col++
	}
	if prevCR {
		c.w.WriteByte('?')
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("downgrade: writing: %w", err)
	}
	return nil
}
