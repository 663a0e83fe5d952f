package downgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

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

// ScanBytes is Scan of a message held in memory. Its read buffer is no
// larger than the message (Scan's is 64 KiB), which is what a small
// message costs to scan at receipt.
func ScanBytes(b []byte) (Needs, error) {
	return scan(bytes.NewReader(b), min(bufSize, max(len(b), 16)))
}

// scan is Scan with a read buffer of size octets; a buffer at least as
// long as the message, or of bufSize, gives the same result.
func scan(r io.Reader, size int) (Needs, error) {
	var st stats
	br := bufio.NewReaderSize(io.TeeReader(r, &st), size)
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
