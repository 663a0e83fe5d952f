package downgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// bufSize is the read and write buffer size; lines longer than this are
// handled in chunks.
const bufSize = 64 << 10

// keptSpool is the most spool memory a Converter keeps between messages.
const keptSpool = 1 << 20

// countingReader counts the octets read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countingWriter counts the octets written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// lfNormalizer turns every LF not preceded by CR into CRLF, for input whose
// line ends are bare LFs (a Unix mailbox file, say).
type lfNormalizer struct {
	r      io.Reader
	in     []byte
	pend   []byte
	prevCR bool
}

func (n *lfNormalizer) Read(p []byte) (int, error) {
	if len(n.pend) > 0 {
		k := copy(p, n.pend)
		n.pend = n.pend[k:]
		return k, nil
	}
	if n.in == nil {
		n.in = make([]byte, bufSize)
	}
	k, err := n.r.Read(n.in[:min(len(n.in), max(len(p)/2, 1))])
	out := p
	o := 0
	var spill []byte
	put := func(c byte) {
		if o < len(out) {
			out[o] = c
			o++
		} else {
			spill = append(spill, c)
		}
	}
	for _, c := range n.in[:k] {
		if c == '\n' && !n.prevCR {
			put('\r')
		}
		put(c)
		n.prevCR = c == '\r'
	}
	n.pend = spill
	if o > 0 && errors.Is(err, io.EOF) {
		err = nil
		if len(n.pend) == 0 {
			n.pend = nil
		}
	}
	return o, err
}

// lineSrc hands out input lines with one line of push-back.
type lineSrc struct {
	br   *bufio.Reader
	push []byte
	eof  bool
}

// next returns the next line including its LF, or a chunk of a line longer
// than the buffer, or the last line without LF; io.EOF when nothing is
// left. The slice is valid until the next call.
func (s *lineSrc) next() ([]byte, error) {
	if s.push != nil {
		p := s.push
		s.push = nil
		return p, nil
	}
	if s.eof {
		return nil, io.EOF
	}
	line, err := s.br.ReadSlice('\n')
	switch {
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
		return line, nil
	case errors.Is(err, io.EOF):
		s.eof = true
		if len(line) == 0 {
			return nil, io.EOF
		}
		return line, nil
	default:
		return nil, fmt.Errorf("downgrade: reading message: %w", err)
	}
}

// unread pushes line back; the next call to next returns it.
func (s *lineSrc) unread(line []byte) { s.push = bytes.Clone(line) }

// writeRest copies everything left to w.
func (s *lineSrc) writeRest(w io.Writer) error {
	if s.push != nil {
		if _, err := w.Write(s.push); err != nil {
			return err
		}
		s.push = nil
	}
	if s.eof {
		return nil
	}
	s.eof = true
	if _, err := s.br.WriteTo(w); err != nil {
		return fmt.Errorf("downgrade: reading message: %w", err)
	}
	return nil
}

// spool holds one body: in memory up to limit octets, then in a temporary
// file.
type spool struct {
	mem   []byte
	limit int
	dir   string
	f     *os.File
	n     int64
}

func (s *spool) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.f == nil && len(s.mem)+len(p) <= s.limit {
		s.mem = append(s.mem, p...)
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "ferry-downgrade-*")
		if err != nil {
			return 0, fmt.Errorf("downgrade: spilling a body part: %w", err)
		}
		s.f = f
	}
	if _, err := s.f.Write(p); err != nil {
		return 0, fmt.Errorf("downgrade: spilling a body part: %w", err)
	}
	return len(p), nil
}

// reader returns the spooled octets from the start.
func (s *spool) reader() (io.Reader, error) {
	if s.f == nil {
		return bytes.NewReader(s.mem), nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("downgrade: rereading a spilled body part: %w", err)
	}
	return io.MultiReader(bytes.NewReader(s.mem), bufio.NewReaderSize(s.f, bufSize)), nil
}

// writeTo copies the spooled octets to w.
func (s *spool) writeTo(w io.Writer) error {
	r, err := s.reader()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("downgrade: copying a body part: %w", err)
	}
	return nil
}

// reset empties s and removes its file, if any.
func (s *spool) reset() {
	s.mem = s.mem[:0]
	if cap(s.mem) > keptSpool {
		// A Converter kept for the next message does not hold on to the
		// memory of one large leaf.
		s.mem = nil
	}
	s.n = 0
	if s.f != nil {
		name := s.f.Name()
		s.f.Close()
		os.Remove(name)
		s.f = nil
	}
}
