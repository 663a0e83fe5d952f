package downgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxRepairs bounds the Report's repair list.
const maxRepairs = 100

// converter holds the state of one Convert call.
type converter struct {
	opts Options
	src  *lineSrc
	w    *bufio.Writer
	rep  *Report
	body spool // the current leaf, preamble or epilogue
	// charset is the charset declared by the message's top-level
	// Content-Type: the label for 8-bit header text of parts that declare
	// none.
	charset string
	dec     spool // a decoded leaf
	st      stats // of body
	decSt   stats // of dec
	qp      qpEncoder
	b64     b64Encoder
}

// delim is what ended a body: a delimiter line of one of the enclosing
// multiparts, or the end of input.
type delim struct {
	idx   int    // index into the boundary stack; -1 for the end of input
	close bool   // a close-delimiter ("--boundary--")
	line  []byte // the delimiter line, its line end made CRLF
	term  bool   // a line end preceded it (it belongs to the delimiter, RFC 2046 §5.1.1)
}

// Convert copies the message read from src to dst as valid 7-bit MIME:
// octets above 127, NULs, bare CR and LF, and lines over 998 octets are
// encoded; everything else is copied byte for byte (see the package doc).
// With Options.EightBit the output is valid 8BITMIME instead: only leaves
// with a NUL, a bare CR or LF or a line over 998 octets are encoded, and
// 8-bit leaves within those limits are kept as they are.
// It returns what it did. A *Error with ErrMalformed or ErrNeedsSMTPUTF8
// means the message cannot be converted; dst then holds partial output.
func Convert(dst io.Writer, src io.Reader, opts Options) (*Report, error) {
	cv := Converter{Options: opts}
	return cv.Convert(dst, src)
}

// Converter converts messages one after another and keeps its buffers
// (about 0.5 MiB, plus up to Options.MemoryLimit of spool) between them.
// The zero value is ready to use. A Converter is not safe for concurrent
// use: give each delivery worker its own.
type Converter struct {
	// Options applies to every conversion.
	Options Options
	c       converter
	br      *bufio.Reader
	bw      *bufio.Writer
}

// Convert is the package-level Convert with cv's options and buffers.
func (cv *Converter) Convert(dst io.Writer, src io.Reader) (*Report, error) {
	opts := cv.Options.withDefaults()
	rep := &Report{EightBit: opts.EightBit}
	cr := &countingReader{r: src}
	if cv.br == nil {
		cv.br = bufio.NewReaderSize(cr, bufSize)
	} else {
		cv.br.Reset(cr)
	}
	br := cv.br
	c := &cv.c
	c.opts, c.rep = opts, rep
	peek, _ := br.Peek(bufSize)
	if i := bytes.IndexByte(peek, '\n'); i >= 0 && (i == 0 || peek[i-1] != '\r') {
		// RFC 5322 §2.1: lines end in CRLF; this input uses bare LF.
		br = bufio.NewReaderSize(&lfNormalizer{r: br}, bufSize)
		c.repair("", "bare LF line ends made CRLF")
	}
	c.src = &lineSrc{br: br}
	cw := &countingWriter{w: dst}
	if cv.bw == nil {
		cv.bw = bufio.NewWriterSize(cw, bufSize)
	} else {
		cv.bw.Reset(cw)
	}
	c.w = cv.bw
	c.body.limit, c.body.dir = opts.MemoryLimit, opts.TempDir
	c.dec.limit, c.dec.dir = opts.MemoryLimit, opts.TempDir
	defer c.body.reset()
	defer c.dec.reset()
	_, err := c.entity("", true, "text/plain", nil, 0)
	if ferr := c.w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("downgrade: writing: %w", ferr)
	}
	c.src, c.w, c.rep = nil, nil, nil
	rep.BytesIn, rep.BytesOut = cr.n, cw.n
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// repair records a fix of malformed input, once per part and kind.
func (c *converter) repair(part, what string) {
	c.rep.Changed = true
	c.notice(part, what)
}

// notice records an oddity of the input that changed nothing.
func (c *converter) notice(part, what string) {
	for _, r := range c.rep.Repairs {
		if r.Part == part && r.What == what {
			return
		}
	}
	if len(c.rep.Repairs) < maxRepairs {
		c.rep.Repairs = append(c.rep.Repairs, Repair{Part: part, What: what})
	}
}

func childPath(path string, i int) string {
	if path == "" {
		return strconv.Itoa(i)
	}
	return path + "." + strconv.Itoa(i)
}

// entity converts one entity, header and body, whose body ends at a
// delimiter of stack or at the end of input. isMsg is set for the top of a
// message (the whole input, or a message/rfc822 body).
func (c *converter) entity(path string, isMsg bool, defType string, stack []string, depth int) (delim, error) {
	note := func(what string) { c.repair(path, what) }
	h, err := readHeader(c.src, c.opts.MaxHeaderBytes, path, stack, isMsg, note)
	if err != nil {
		return delim{}, err
	}
	if path == "" && h.get("dkim-signature") != nil {
		c.rep.DKIMSigned = true
	}
	ctf := h.get("content-type")
	mt := mediaType{full: defType}
	if ctf != nil {
		mt = parseMediaType(ctf.value())
		if strings.Count(mt.full, "/") != 1 {
			mt.full = "text/plain" // RFC 2045 §5.2
		}
	}
	if path == "" {
		c.charset = mt.charset
	}
	cs := mt.charset
	if cs == "" {
		cs = c.charset // the message's, for a part that declares none
	}
	if err := c.fixHeader(h, path, cs); err != nil {
		return delim{}, err
	}
	label := cteLabel(h.get("content-transfer-encoding"))
	if depth < c.opts.MaxDepth && !encodedCTE(label) {
		switch {
		case mt.isMultipart() && mt.boundary != "" && len(mt.boundary) <= 200:
			c.relabel(h, label, path)
			c.addMIMEVersion(h, isMsg, path)
			if _, err := c.w.Write(h.bytes()); err != nil {
				return delim{}, fmt.Errorf("downgrade: writing: %w", err)
			}
			return c.multipart(path, mt, stack, depth)
		case mt.isMessage():
			c.relabel(h, label, path)
			c.addMIMEVersion(h, isMsg, path)
			if _, err := c.w.Write(h.bytes()); err != nil {
				return delim{}, fmt.Errorf("downgrade: writing: %w", err)
			}
			return c.entity(path, true, "text/plain", stack, depth+1)
		}
	}
	leafPath := path
	if isMsg {
		leafPath = childPath(path, 1)
	}
	return c.leaf(h, leafPath, mt, ctf == nil, label, isMsg, stack)
}

// relabel makes a composite's 8bit or binary label, or one Convert does
// not know (walked as identity), 7bit: its body will be 7-bit once
// converted (RFC 2045 §6.4, RFC 2046 §5.2.1). For the 8BITMIME target an
// 8bit label stays and the others become 8bit.
func (c *converter) relabel(h *header, label, path string) {
	if c.fitsLabel(label) {
		return
	}
	h.set("content-transfer-encoding", "Content-Transfer-Encoding", []byte("Content-Transfer-Encoding: "+c.composedCTE()+"\r\n"))
	c.rep.Relabelled = append(c.rep.Relabelled, path)
	c.rep.Changed = true
}

// addMIMEVersion adds "MIME-Version: 1.0" to the header of a message that
// has a Content-Type field but none: without it strict readers take the
// message for plain text (RFC 2045 §4) and show the transfer encodings
// conversion adds as they are. Of a composite message it is not known yet
// whether a part will be encoded; Convert runs on messages that need
// conversion, so it is added whenever the field is missing.
func (c *converter) addMIMEVersion(h *header, isMsg bool, path string) {
	if !isMsg || h.get("content-type") == nil || h.get("mime-version") != nil {
		return
	}
	h.fields = append(h.fields, field{raw: []byte("MIME-Version: 1.0\r\n"), name: "MIME-Version", lname: "mime-version"})
	c.repair(path, "MIME-Version: 1.0 added to a message with Content-Type")
}

// multipart converts a multipart body: preamble, parts, epilogue.
func (c *converter) multipart(path string, mt mediaType, stack []string, depth int) (delim, error) {
	st := append(stack[:len(stack):len(stack)], mt.boundary)
	me := len(st) - 1
	defChild := "text/plain"
	if mt.full == "multipart/digest" {
		defChild = "message/rfc822" // RFC 2046 §5.1.5
	}
	d, err := c.scanToSpool(st, false)
	if err != nil {
		return d, err
	}
	if d.idx != me {
		// The boundary never occurs: nothing but a preamble. Its content
		// would be lost to readers, so it may only pass when clean.
		if c.unfit(&c.st) {
			return d, malformed(path, "multipart boundary %q not found and the body is unfit for the next hop", mt.boundary)
		}
		c.notice(path, "multipart boundary never found; body passed as it was")
		return d, c.body.writeTo(c.w)
	}
	if err := c.writeSpool(path, "preamble"); err != nil {
		return d, err
	}
	if err := c.writeDelim(d); err != nil {
		return d, err
	}
	for i := 1; !d.close; i++ {
		pd, err := c.entity(childPath(path, i), false, defChild, st, depth+1)
		if err != nil {
			return pd, err
		}
		if pd.idx != me {
			// An outer delimiter or the end came first.
			c.repair(path, "missing close-delimiter added")
			if _, err := c.w.WriteString("\r\n--" + mt.boundary + "--\r\n"); err != nil {
				return pd, fmt.Errorf("downgrade: writing: %w", err)
			}
			pd.term = false
			return pd, nil
		}
		if err := c.writeDelim(pd); err != nil {
			return pd, err
		}
		d = pd
	}
	d, err = c.scanToSpool(stack, false)
	if err != nil {
		return d, err
	}
	return d, c.writeSpool(path, "epilogue")
}

// writeDelim writes a delimiter line (nothing for the end of input).
func (c *converter) writeDelim(d delim) error {
	if d.idx < 0 {
		return nil
	}
	if d.term {
		if _, err := c.w.Write(crlf); err != nil {
			return fmt.Errorf("downgrade: writing: %w", err)
		}
	}
	if _, err := c.w.Write(d.line); err != nil {
		return fmt.Errorf("downgrade: writing: %w", err)
	}
	return nil
}

// leaf converts a leaf entity: its body is spooled and examined, then the
// header (with the Content-Transfer-Encoding field changed if need be) and
// the body, verbatim or encoded, are written.
func (c *converter) leaf(h *header, path string, mt mediaType, noCT bool, label string, isMsg bool, stack []string) (delim, error) {
	nonMIME := isMsg && noCT
	d, err := c.scanToSpool(stack, nonMIME)
	if err != nil {
		return d, err
	}
	final := d.idx < 0
	if !c.unfit(&c.st) {
		if c.opts.EightBit {
			c.keepLeaf(h, path, mt, label, isMsg)
		}
		if _, err := c.w.Write(h.bytes()); err != nil {
			return d, fmt.Errorf("downgrade: writing: %w", err)
		}
		return d, c.body.writeTo(c.w)
	}
	if mt.isComposite() && !encodedCTE(label) {
		return d, malformed(path, "%s entity with content unfit for the next hop cannot be walked and may not be encoded", mt.full)
	}
	content, cst := &c.body, &c.st
	if !identityCTE(label) && !encodedCTE(label) {
		// A label Convert does not know ("7-bit", "plain", x-uuencode):
		// the body is taken as it is and encoded losslessly, as for a
		// lying 7bit label (RFC 2045 §6.4 leaves such data opaque).
		c.notice(path, fmt.Sprintf("unknown Content-Transfer-Encoding %q taken as the data as it is", label))
	}
	if encodedCTE(label) {
		if err := c.decode(path, label, nonMIME); err != nil {
			return d, err
		}
		content, cst = &c.dec, &c.decSt
	}
	newCTE := "base64"
	if strings.HasPrefix(mt.full, "text/") && cst.escapeShare() <= qpMaxEscapeShare && !(c.opts.EightBit && label == "binary") {
		newCTE = "quoted-printable"
	}
	if isMsg && h.get("mime-version") == nil {
		h.fields = append(h.fields, field{raw: []byte("MIME-Version: 1.0\r\n"), name: "MIME-Version", lname: "mime-version"})
	}
	if nonMIME {
		cs := "utf-8"
		if !cst.validUTF8() {
			cs = "unknown-8bit" // RFC 1428
		}
		h.fields = append(h.fields, field{raw: []byte("Content-Type: text/plain; charset=" + cs + "\r\n"), name: "Content-Type", lname: "content-type"})
	}
	h.set("content-transfer-encoding", "Content-Transfer-Encoding", []byte("Content-Transfer-Encoding: "+newCTE+"\r\n"))
	if _, err := c.w.Write(h.bytes()); err != nil {
		return d, fmt.Errorf("downgrade: writing: %w", err)
	}
	r, err := content.reader()
	if err != nil {
		return d, err
	}
	var whole []byte
	if content.f == nil {
		whole = content.mem[:len(content.mem):len(content.mem)]
		if whole == nil {
			whole = []byte{}
		}
	}
	var nOut int64
	if newCTE == "base64" {
		_, nOut, err = c.b64.encode(c.w, r, whole, final)
	} else {
		_, nOut, err = c.qp.encode(c.w, r, whole, final)
	}
	if err != nil {
		return d, err
	}
	c.rep.Changed = true
	c.rep.Parts = append(c.rep.Parts, PartReport{
		Path: path, ContentType: mt.full, OldCTE: label, NewCTE: newCTE,
		Reason: c.reason(&c.st), BytesIn: c.body.n, BytesOut: nOut,
	})
	return d, nil
}

// decode turns the spooled body, labelled label, into its content in dec.
func (c *converter) decode(path, label string, checkUTF8 bool) error {
	c.dec.reset()
	c.decSt = stats{checkUTF8: checkUTF8}
	r, err := c.body.reader()
	if err != nil {
		return err
	}
	sink := &bodySink{sp: &c.dec, st: &c.decSt}
	switch label {
	case "quoted-printable":
		src := &lineSrc{br: bufio.NewReaderSize(r, bufSize)}
		if err := decodeQPLenient(sink, src, c.opts.MemoryLimit); err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Part = path
			}
			return err
		}
	case "base64":
		dropped, err := decodeB64Lenient(sink, r)
		if err != nil {
			return err
		}
		if dropped {
			c.repair(path, "dangling base64 character dropped")
		}
	default:
		return malformed(path, "unknown Content-Transfer-Encoding %q on content unfit for 7-bit", label)
	}
	c.decSt.finish()
	return nil
}

// qpMaxEscapeShare is the largest share of escaped octets for which a text
// leaf is encoded quoted-printable rather than base64. At one in four,
// quoted-printable's output (three octets per escape) is at most a fifth
// larger than base64's (4/3), a price worth paying for text that stays
// readable on the wire and in a mail client's raw view: accented Latin text
// (typically 5–20% 8-bit octets in UTF-8) goes quoted-printable, Cyrillic,
// Greek or CJK text (50% and more) goes base64.
const qpMaxEscapeShare = 0.25
