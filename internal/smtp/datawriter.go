package smtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// dataWriterBuffer is the size of the DATA writer's output buffer.
const dataWriterBuffer = 32 << 10

// States of the DATA writer.
const (
	wBOL = iota // at a line start (or the start of the content)
	wMid        // inside a line
	wCR         // after a CR whose successor is not yet known
)

// errWriterClosed is returned by Write after Close.
var errWriterClosed = errors.New("smtp: write to a closed DATA writer")

// dataWriter writes DATA content; see NewDataWriter.
type dataWriter struct {
	w     io.Writer
	state int
	buf   []byte
	err   error
}

// NewDataWriter returns a writer that sends message content after a 354
// reply (RFC 5321 §4.5.2): a line starting with "." gets a second dot
// (dot-stuffing), and every bare CR or bare LF is sent as CRLF, so nothing
// written to w ever holds a bare CR or LF. Close ends the data with
// ".\r\n", preceded by CRLF when the content did not end with a line end;
// it does not close w. Output is buffered; w sees large writes.
func NewDataWriter(w io.Writer) io.WriteCloser {
	return NewDataWriterBuffer(w, nil)
}

// NewDataWriterBuffer is NewDataWriter with buf as its output buffer when
// it has room for 32 KiB (else one is allocated), so that a caller sending
// one message after another can reuse it once the writer is closed.
func NewDataWriterBuffer(w io.Writer, buf []byte) io.WriteCloser {
	if cap(buf) < dataWriterBuffer {
		buf = make([]byte, 0, dataWriterBuffer)
	}
	return &dataWriter{w: w, buf: buf[:0]}
}

// Write implements io.Writer.
func (d *dataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	for i := 0; i < len(p); {
		if cap(d.buf)-len(d.buf) < 3 {
			if err := d.flush(); err != nil {
				return i, err
			}
		}
		switch d.state {
		case wCR:
			d.buf = append(d.buf, '\r', '\n')
			d.state = wBOL
			if p[i] == '\n' {
				i++
			}
		case wBOL:
			if p[i] == '.' {
				d.buf = append(d.buf, '.')
			}
			d.state = wMid
		case wMid:
			seg := p[i:]
			if room := cap(d.buf) - len(d.buf) - 2; len(seg) > room {
				seg = seg[:room]
			}
			cr := bytes.IndexByte(seg, '\r')
			lfIn := seg
			if cr >= 0 {
				lfIn = seg[:cr]
			}
			if lf := bytes.IndexByte(lfIn, '\n'); lf >= 0 {
				d.buf = append(d.buf, seg[:lf]...)
				d.buf = append(d.buf, '\r', '\n')
				i += lf + 1
				d.state = wBOL
				continue
			}
			if cr >= 0 {
				d.buf = append(d.buf, seg[:cr]...)
				i += cr + 1
				d.state = wCR
				continue
			}
			d.buf = append(d.buf, seg...)
			i += len(seg)
		}
	}
	return len(p), nil
}

// Close ends the content with the terminating ".\r\n" and flushes.
func (d *dataWriter) Close() error {
	if d.err != nil {
		if d.err == errWriterClosed {
			return nil
		}
		return d.err
	}
	if d.state != wBOL {
		d.buf = append(d.buf, '\r', '\n')
	}
	d.buf = append(d.buf, '.', '\r', '\n')
	if err := d.flush(); err != nil {
		return err
	}
	d.err = errWriterClosed
	return nil
}

// flush writes the buffered output to the underlying writer.
func (d *dataWriter) flush() error {
	if len(d.buf) == 0 {
		return nil
	}
	if _, err := d.w.Write(d.buf); err != nil {
		d.err = fmt.Errorf("smtp: writing message data: %w", err)
		return d.err
	}
	d.buf = d.buf[:0]
	return nil
}
