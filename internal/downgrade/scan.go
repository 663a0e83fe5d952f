package downgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ferrymta/ferry/internal/contentscan"
)

// Needs says what in a message a 7-bit transport cannot carry as it is.
// It is defined in the leaf package contentscan so that package smtp can
// keep it with an envelope without importing the converter.
type Needs = contentscan.Needs

// Scan reads the whole message from r and reports what it needs, without
// walking its MIME structure: it is a byte scan plus a look at the
// top-level header, cheap enough to run before every delivery attempt.
func Scan(r io.Reader) (Needs, error) { return scan(r, bufSize) }

// ScanBytes is Scan of a message held in memory: the octets are counted
// where they lie and only the top-level header goes through a read buffer
// (no larger than the header), which is what a message costs to scan at
// receipt.
func ScanBytes(b []byte) (Needs, error) {
	hdr := b[:headerEnd(b)]
	return scanBytes(b, bufio.NewReaderSize(bytes.NewReader(hdr), min(bufSize, max(len(hdr), 16))))
}

// Scanner is ScanBytes with its header read buffer reused from one message
// to the next, for a caller that scans many (the queue at receipt). Its
// zero value is ready; it is safe for concurrent use.
type Scanner struct {
	readers sync.Pool // *bufio.Reader of bufSize octets
}

// ScanBytes is the package's ScanBytes, reading the header through a
// buffer of Scan's size (which gives the same result) kept for the next
// call.
func (sc *Scanner) ScanBytes(b []byte) (Needs, error) {
	br, _ := sc.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(nil, bufSize)
	}
	br.Reset(bytes.NewReader(b[:headerEnd(b)]))
	n, err := scanBytes(b, br)
	br.Reset(nil)
	sc.readers.Put(br)
	return n, err
}

// scanBytes counts b's octets where they lie and reads its header, which
// br holds, through scanHeader.
func scanBytes(b []byte, br *bufio.Reader) (Needs, error) {
	var st stats
	st.Write(b)
	n, err := scanHeader(br)
	if err != nil {
		return Needs{}, err
	}
	return st.needs(n), nil
}

// headerEnd is the length of b's prefix that holds its top-level header
// and the empty line ending it (all of b when there is none): readHeader
// stops at the first empty line, which follows an LF (or starts b).
func headerEnd(b []byte) int {
	end := len(b)
	if i := bytes.Index(b, []byte("\n\r\n")); i >= 0 {
		end = i + 3
	}
	if i := bytes.Index(b[:end], []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	return end
}

// scan is Scan with a read buffer of size octets; a buffer at least as
// long as the message, or of bufSize, gives the same result.
func scan(r io.Reader, size int) (Needs, error) {
	var st stats
	br := bufio.NewReaderSize(io.TeeReader(r, &st), size)
	n, err := scanHeader(br)
	if err != nil {
		return Needs{}, err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return Needs{}, fmt.Errorf("downgrade: scanning: %w", err)
	}
	return st.needs(n), nil
}

// scanHeader reads the top-level header from br and reports what its
// fields need (8-bit text, SMTPUTF8, a DKIM signature).
func scanHeader(br *bufio.Reader) (Needs, error) {
	src := &lineSrc{br: br}
	h, err := readHeader(src, 1<<20, "", nil, true, func(string) {})
	if err != nil && !errors.Is(err, ErrMalformed) {
		return Needs{}, fmt.Errorf("downgrade: scanning: %w", err)
	}
	var n Needs
	if h == nil {
		return n, nil
	}
	n.DKIMSigned = h.get("dkim-signature") != nil
	for i := range h.fields {
		f := &h.fields[i]
		if !has8bit(f.raw) {
			continue
		}
		n.HeaderEightBit = true
		var c converter
		c.rep = &Report{}
		if errors.Is(c.encodeField(f, "", ""), ErrNeedsSMTPUTF8) {
			n.NeedsSMTPUTF8 = true
		}
	}
	return n, nil
}

// needs completes n with the octet counts of the whole message.
func (s *stats) needs(n Needs) Needs {
	s.finish()
	n.EightBit = s.high > 0
	n.NUL = s.nul > 0
	n.BareCR = s.bareCR > 0
	n.BareLF = s.bareLF > 0
	n.LongLines = s.long > 0
	return n
}

// ConvertIfNeeded is how a message is made fit for a 7-bit next hop: when
// Scan finds it fit as it is (Needs.SevenBit), which is when delivery
// sends it unconverted to a hop without 8BITMIME, it is copied to dst
// byte for byte and the Report says unchanged; otherwise it is converted
// as by Convert. With Options.EightBit, fit means no NUL, bare CR or LF
// and no long line (octets above 127 are fine), as delivery decides for a
// hop with 8BITMIME. src is read twice, hence the io.ReadSeeker. Delivery
// makes the same decision in its transfer plan; `ferry convert` calls
// this, so both agree on every message.
func (cv *Converter) ConvertIfNeeded(dst io.Writer, src io.ReadSeeker) (*Report, Needs, error) {
	n, err := Scan(src)
	if err != nil {
		return nil, n, err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, n, fmt.Errorf("downgrade: rereading the message: %w", err)
	}
	fit := n.SevenBit()
	if cv.Options.EightBit {
		fit = !n.Binary()
	}
	if !fit {
		rep, err := cv.Convert(dst, src)
		return rep, n, err
	}
	cnt := &countingWriter{w: dst}
	k, err := io.Copy(cnt, src)
	rep := &Report{BytesIn: k, BytesOut: cnt.n, DKIMSigned: n.DKIMSigned}
	if err != nil {
		return rep, n, fmt.Errorf("downgrade: copying the message: %w", err)
	}
	return rep, n, nil
}
