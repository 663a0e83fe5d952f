package smtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseBDATArg parses the argument of BDAT (RFC 3030 §2): chunk-size
// [SP end-marker], where chunk-size is 1*DIGIT and end-marker is "LAST"
// (case-insensitive). A size of 0 is allowed ("BDAT 0 LAST" ends a
// message). Surrounding spaces are tolerated.
func ParseBDATArg(arg string) (size int64, last bool, err error) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 {
		return 0, false, syntaxErr("expected BDAT <size> [LAST]")
	}
	for i := 0; i < len(f[0]); i++ {
		if !isDigit(f[0][i]) {
			return 0, false, syntaxErr("bad BDAT chunk size")
		}
	}
	size, perr := strconv.ParseInt(f[0], 10, 64)
	if perr != nil {
		return 0, false, syntaxErr("BDAT chunk size out of range")
	}
	if len(f) == 2 {
		if !strings.EqualFold(f[1], "LAST") {
			return 0, false, syntaxErr("expected LAST after the BDAT chunk size")
		}
		last = true
	}
	return size, last, nil
}

// BDATReader reads the chunks of one message sent with BDAT (RFC 3030) on
// the server side. Each chunk is exactly its announced number of octets,
// with no dot-stuffing and no terminator.
//
// With binary set (the message was declared BODY=BINARYMIME, RFC 3030 §3)
// the content is passed through untouched: bare CR and LF are legitimate
// binary octets. Otherwise the content is text that must use CRLF, and the
// DATA reader's bare CR/LF policy applies, across chunk boundaries (a CR
// ending one chunk and a LF starting the next are one CRLF). The size limit
// counts output octets across all chunks. After a failure (size or bare
// newline) every later chunk is still read in full and discarded, and its
// reader returns the same error, so the session stays in step.
type BDATReader struct {
	opts   DataOptions
	binary bool
	out    int64 // output octets so far
	in     int64 // input octets so far
	cr     bool  // the previous chunk ended in a CR (text mode only)
	final  error // the message's failure, if any
	raw    []byte
}

// NewBDATReader returns a reader for the chunks of one message.
func NewBDATReader(opts DataOptions, binary bool) *BDATReader {
	return &BDATReader{opts: opts, binary: binary}
}

// Err returns the error that failed the message (wrapping ErrTooLarge or
// ErrBareNewline), or nil.
func (b *BDATReader) Err() error { return b.final }

// Size returns the content octets returned so far.
func (b *BDATReader) Size() int64 { return b.out }

// Chunk returns a reader of the next chunk: it reads exactly size octets
// from r (no more) and returns io.EOF at the chunk's end, or the message's
// failure once the chunk has been drained. An early end of r is
// io.ErrUnexpectedEOF, wrapped. last marks the chunk of "BDAT n LAST".
func (b *BDATReader) Chunk(r io.Reader, size int64, last bool) io.Reader {
	if b.raw == nil {
		b.raw = make([]byte, 16<<10)
	}
	return &bdatChunk{b: b, r: r, left: size, last: last}
}

// bdatChunk reads one chunk; see BDATReader.Chunk.
type bdatChunk struct {
	b       *BDATReader
	r       io.Reader
	left    int64  // input octets of the chunk not yet read
	last    bool   // this is the LAST chunk
	pend    []byte // raw octets read but not yet transformed
	err     error  // sticky result
	flushed bool   // a pending CR at the end of the LAST chunk was handled
	small   [64]byte
	outLeft []byte // output of a short Read not yet returned
}

// Read implements io.Reader.
func (c *bdatChunk) Read(p []byte) (int, error) {
	if len(c.outLeft) > 0 {
		n := copy(p, c.outLeft)
		c.outLeft = c.outLeft[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) < len(c.small) {
		n, err := c.read(c.small[:])
		k := copy(p, c.small[:n])
		c.outLeft = c.small[k:n]
		if len(c.outLeft) > 0 {
			return k, nil
		}
		return k, err
	}
	return c.read(p)
}

// read fills p (at least 64 octets long) with content.
func (c *bdatChunk) read(p []byte) (int, error) {
	b := c.b
	for {
		if len(c.pend) == 0 && c.left > 0 {
			buf := b.raw
			if int64(len(buf)) > c.left {
				buf = buf[:c.left]
			}
			n, err := c.r.Read(buf)
			c.left -= int64(n)
			b.in += int64(n)
			c.pend = buf[:n]
			if n == 0 && err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				c.err = fmt.Errorf("smtp: reading BDAT chunk with %d octets left: %w", c.left, err)
				return 0, c.err
			}
		}
		var nd int
		if len(c.pend) > 0 {
			nd = c.transform(p)
		} else if c.last && !c.flushed {
			c.flushed = true
			if b.cr && !b.binary {
				b.cr = false
				b.bare("CR", b.in-1)
				p[0], p[1] = '\r', '\n'
				nd = 2
			}
		} else {
			c.err = io.EOF
			if b.final != nil {
				c.err = b.final
			}
		}
		if b.final != nil {
			nd = 0 // draining
		} else if b.opts.MaxSize > 0 && b.out+int64(nd) > b.opts.MaxSize {
			nd = int(b.opts.MaxSize - b.out)
			if nd > 0 && !b.binary && p[nd-1] == '\r' {
				nd-- // never return half a CRLF
			}
			b.final = fmt.Errorf("%w (limit %d octets)", ErrTooLarge, b.opts.MaxSize)
		}
		b.out += int64(nd)
		if nd > 0 {
			return nd, nil
		}
		if c.err != nil {
			return 0, c.err
		}
	}
}

// bare records a bare CR or LF at input offset at: with BareReject the
// message fails.
func (b *BDATReader) bare(kind string, at int64) {
	if b.opts.Bare == BareReject && b.final == nil {
		b.final = fmt.Errorf("%w: bare %s at octet %d of the message data", ErrBareNewline, kind, at)
	}
}

// transform moves pending raw octets into p (len(p) >= 3), normalizing bare
// CR and LF in text mode, and returns the octets written.
func (c *bdatChunk) transform(p []byte) int {
	b := c.b
	if b.binary {
		n := copy(p, c.pend)
		c.pend = c.pend[n:]
		return n
	}
	// Offset in the input of c.pend[0].
	base := b.in - int64(len(c.pend))
	nd, ns := 0, 0
	for ns < len(c.pend) && len(p)-nd >= 3 {
		if b.cr {
			b.cr = false
			p[nd], p[nd+1] = '\r', '\n'
			nd += 2
			if c.pend[ns] == '\n' {
				ns++
			} else {
				b.bare("CR", base+int64(ns)-1)
			}
			continue
		}
		seg := c.pend[ns:]
		if room := len(p) - nd - 2; len(seg) > room {
			seg = seg[:room]
		}
		// i is the first CR or LF in seg, or len(seg).
		i := bytes.IndexByte(seg, '\r')
		lfIn := seg
		if i >= 0 {
			lfIn = seg[:i]
		} else {
			i = len(seg)
		}
		if lf := bytes.IndexByte(lfIn, '\n'); lf >= 0 {
			i = lf
		}
		nd += copy(p[nd:], seg[:i])
		ns += i
		if i == len(seg) {
			continue
		}
		ns++
		if seg[i] == '\r' {
			b.cr = true
			continue
		}
		b.bare("LF", base+int64(ns)-1)
		p[nd], p[nd+1] = '\r', '\n'
		nd += 2
	}
	c.pend = c.pend[ns:]
	return nd
}

// WriteBDAT writes one BDAT command with its chunk (RFC 3030 §2):
// "BDAT <len> [LAST]\r\n" followed by exactly the chunk's octets. The caller
// reads the reply, at once or later when pipelining (RFC 3030 §4.2).
func WriteBDAT(w io.Writer, chunk []byte, last bool) error {
	cmd := "BDAT " + strconv.Itoa(len(chunk))
	if last {
		cmd += " LAST"
	}
	if _, err := io.WriteString(w, cmd+"\r\n"); err != nil {
		return fmt.Errorf("smtp: writing %s: %w", cmd, err)
	}
	if _, err := w.Write(chunk); err != nil {
		return fmt.Errorf("smtp: writing BDAT chunk: %w", err)
	}
	return nil
}

// BDATWriter sends message content as BDAT chunks of a fixed size on the
// client side. The content is sent as given (BDAT has no dot-stuffing);
// the caller is responsible for it being canonical.
type BDATWriter struct {
	w       io.Writer
	buf     []byte
	onChunk func(size int, last bool) error
	err     error
	closed  bool
}

// NewBDATWriter returns a writer that sends content to w in chunks of
// chunkSize octets (at least 1; 0 means 1 MiB). After each chunk is written,
// onChunk, if not nil, is called; it typically flushes w and, without
// PIPELINING, reads the reply, returning an error to stop the transfer.
func NewBDATWriter(w io.Writer, chunkSize int, onChunk func(size int, last bool) error) *BDATWriter {
	if chunkSize <= 0 {
		chunkSize = 1 << 20
	}
	return &BDATWriter{w: w, buf: make([]byte, 0, chunkSize), onChunk: onChunk}
}

// Write implements io.Writer.
func (bw *BDATWriter) Write(p []byte) (int, error) {
	if bw.err != nil {
		return 0, bw.err
	}
	if bw.closed {
		return 0, errors.New("smtp: write to a closed BDAT writer")
	}
	n := 0
	for len(p) > 0 {
		c := copy(bw.buf[len(bw.buf):cap(bw.buf)], p)
		bw.buf = bw.buf[:len(bw.buf)+c]
		p = p[c:]
		n += c
		if len(bw.buf) == cap(bw.buf) && len(p) > 0 {
			if err := bw.send(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Close sends the remaining content as the LAST chunk ("BDAT 0 LAST" when
// nothing is left). It does not close the underlying writer.
func (bw *BDATWriter) Close() error {
	if bw.err != nil || bw.closed {
		return bw.err
	}
	bw.closed = true
	return bw.send(true)
}

// send writes the buffered content as one chunk.
func (bw *BDATWriter) send(last bool) error {
	if err := WriteBDAT(bw.w, bw.buf, last); err != nil {
		bw.err = err
		return err
	}
	size := len(bw.buf)
	bw.buf = bw.buf[:0]
	if bw.onChunk != nil {
		if err := bw.onChunk(size, last); err != nil {
			bw.err = err
			return err
		}
	}
	return nil
}
