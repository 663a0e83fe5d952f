package downgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Needs says what in a message a 7-bit transport cannot carry as it is.
type Needs struct {
	EightBit  bool // an octet above 127 anywhere (RFC 6152: needs 8BITMIME)
	NUL       bool // a NUL octet (needs BINARYMIME, RFC 3030)
	BareCR    bool // a CR not followed by LF
	BareLF    bool // an LF not preceded by CR
	LongLines bool // a line longer than 998 octets (RFC 5322 §2.1.1)
	// HeaderEightBit is set when the top-level header has 8-bit text
	// (RFC 6532: needs SMTPUTF8, or encoded-words after conversion).
	HeaderEightBit bool
	// NeedsSMTPUTF8 is set when that 8-bit text sits where no
	// encoded-word may go (an addr-spec, another structured field), so
	// that Convert would fail with ErrNeedsSMTPUTF8.
	NeedsSMTPUTF8 bool
	// DKIMSigned is set when the top-level header has a DKIM-Signature
	// field, which conversion invalidates (RFC 6376 §5.3).
	DKIMSigned bool
}

// SevenBit reports whether the message can go to a 7-bit next hop as it
// is.
func (n Needs) SevenBit() bool {
	return !n.EightBit && !n.Binary()
}

// Binary reports whether the message holds what even 8BITMIME cannot
// carry: NULs, bare CR or LF, or lines over 998 octets (RFC 6152 §3 limits
// 8BITMIME to 8-bit lines of at most 998 octets, CRLF-terminated).
func (n Needs) Binary() bool {
	return n.NUL || n.BareCR || n.BareLF || n.LongLines
}

// Scan reads the whole message from r and reports what it needs, without
// walking its MIME structure: it is a byte scan plus a look at the
// top-level header, cheap enough to run before every delivery attempt.
func Scan(r io.Reader) (Needs, error) { return scan(r, bufSize) }

// ScanBytes is Scan of a message held in memory. Its read buffer is no
// larger than the message (Scan's is 64 KiB), which is what a small
// message costs to scan at receipt.
func ScanBytes(b []byte) (Needs, error) {
	return scan(bytes.NewReader(b), min(bufSize, max(len(b), 16)))
}

// Scanner is ScanBytes with its read buffers reused from one message to
// the next, for a caller that scans many (the queue at receipt). Its zero
// value is ready; it is safe for concurrent use.
type Scanner struct {
	readers sync.Pool // *bufio.Reader of bufSize octets
}

// ScanBytes is the package's ScanBytes, reading through a buffer of
// Scan's size (which gives the same result) kept for the next call.
func (sc *Scanner) ScanBytes(b []byte) (Needs, error) {
	br, _ := sc.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(nil, bufSize)
	}
	n, err := scanWith(bytes.NewReader(b), br)
	br.Reset(nil)
	sc.readers.Put(br)
	return n, err
}

// scan is Scan with a read buffer of size octets; a buffer at least as
// long as the message, or of bufSize, gives the same result.
func scan(r io.Reader, size int) (Needs, error) {
	return scanWith(r, bufio.NewReaderSize(nil, size))
}

// scanWith is scan reading through br, which it resets to r.
func scanWith(r io.Reader, br *bufio.Reader) (Needs, error) {
	var st stats
	br.Reset(io.TeeReader(r, &st))
	src := &lineSrc{br: br}
	h, err := readHeader(src, 1<<20, "", nil, true, func(string) {})
	if err != nil && !errors.Is(err, ErrMalformed) {
		return Needs{}, fmt.Errorf("downgrade: scanning: %w", err)
	}
	var n Needs
	if h != nil {
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
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return Needs{}, fmt.Errorf("downgrade: scanning: %w", err)
	}
	st.finish()
	n.EightBit = st.high > 0
	n.NUL = st.nul > 0
	n.BareCR = st.bareCR > 0
	n.BareLF = st.bareLF > 0
	n.LongLines = st.long > 0
	return n, nil
}

// ConvertIfNeeded is how a message is made fit for a 7-bit next hop: when
// Scan finds it fit as it is (Needs.SevenBit), which is when delivery
// sends it unconverted to a hop without 8BITMIME, it is copied to dst
// byte for byte and the Report says unchanged; otherwise it is converted
// as by Convert. src is read twice, hence the io.ReadSeeker. Delivery
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
	if !n.SevenBit() {
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
