package deliver

import (
	"encoding/binary"
	"errors"
	"io"
	"strings"

	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// spillMemory is how much of a message a prepared content keeps in memory
// before the rest goes to a temporary file.
const spillMemory = 4 << 20

// keepPrepared is the most memory of prepared content a connection keeps
// for its next message.
const keepPrepared = 1 << 20

// prepared is a message's content made ready before MAIL FROM: converted
// and signed as the transfer needs, held in a spill buffer, so that its
// exact size is known when SIZE= is declared and compared with the hop's
// fixed maximum (RFC 1870 §4, §6.1).
type prepared struct {
	c      *Client // keeps the buffer's memory for its next message
	buf    *queue.Spill
	fields string   // signature fields that go before the content
	remove []string // raw header fields of the content left out
	// converted is the size of the content after conversion, before
	// any signature field; size is the exact size of what is sent.
	converted, size int64
	// sevenBit is set when content converted for BODY=8BITMIME has no
	// octet above 127 after all (the signature fields never do); it is
	// looked for only then (TransferPlan.WithSevenBitContent).
	sevenBit bool
}

// highBitWriter passes writes on and notes whether any octet is above 127.
type highBitWriter struct {
	w    io.Writer
	seen bool
}

func (h *highBitWriter) Write(p []byte) (int, error) {
	if !h.seen {
		h.seen = hasHighBit(p)
	}
	return h.w.Write(p)
}

// hasHighBit reports whether p has an octet above 127, eight at a time.
func hasHighBit(p []byte) bool {
	for len(p) >= 8 {
		if binary.LittleEndian.Uint64(p)&0x8080808080808080 != 0 {
			return true
		}
		p = p[8:]
	}
	for _, b := range p {
		if b >= 0x80 {
			return true
		}
	}
	return false
}

// reader returns what goes on the wire: the signature fields, then the
// buffered content without the fields removed.
func (p *prepared) reader() io.Reader {
	body := p.buf.Reader()
	if len(p.remove) > 0 {
		body = dkim.WithoutFields(body, p.remove)
	}
	return io.MultiReader(strings.NewReader(p.fields), body)
}

// close frees the buffer, keeping a small one's memory for the
// connection's next message.
func (p *prepared) close() {
	if b := p.buf.Detach(); cap(b) <= keepPrepared {
		p.c.prepBuf = b
	}
}

// needsPreparing reports whether content goes through prepare before MAIL
// FROM: when it is signed (signing reads it whole anyway), and when it is
// converted for a hop that takes SIZE=, whose value must then be the size
// after conversion, which only the conversion itself tells exactly (its
// growth ranges from a few octets to more than half again, and more for
// short messages).
func needsPreparing(plan TransferPlan, sign signFunc) bool {
	return sign != nil || plan.Convert && plan.Size > 0
}

// prepare converts the stored body as plan says (through conv) into a
// spill buffer, then signs the result when sign is set. The error is a
// *storeError, *convError, *signError or *bufferError; the caller maps it
// with contentReply. The converter's report is kept for LastConversion.
func (c *Client) prepare(body io.Reader, plan TransferPlan, conv Converter, sign signFunc) (*prepared, error) {
	src, stop := c.converted(body, plan, conv)
	buf := queue.NewSpill(nil, "", spillMemory, "content buffer")
	buf.UseBuffer(c.prepBuf)
	c.prepBuf = nil // the Spill's until close
	c.buffers()
	var dst io.Writer = buf
	var hw *highBitWriter
	if plan.Convert && plan.Body == smtp.Body8BitMIME {
		hw = &highBitWriter{w: buf}
		dst = hw
	}
	n, err := io.CopyBuffer(dst, src, c.copyBuf)
	stop()
	if err != nil {
		buf.Close()
		var se *storeError
		var ce *convError
		if !errors.As(err, &se) && !errors.As(err, &ce) {
			// The buffer failed (a temporary file that cannot be
			// written): a local error, not the hop's.
			err = &bufferError{err: err}
		}
		return nil, err
	}
	p := &prepared{c: c, buf: buf, converted: n, size: n, sevenBit: hw != nil && !hw.seen}
	if sign == nil {
		return p, nil
	}
	changed := c.conversion != nil && c.conversion.Changed
	res, err := sign(buf.Reader, changed)
	if err != nil {
		buf.Close()
		return nil, &signError{err: err}
	}
	p.fields, p.remove = res.Fields, res.Remove
	if len(p.remove) == 0 {
		p.size += int64(len(p.fields))
		return p, nil
	}
	// Ferry's own earlier signature is left out: count what remains.
	if p.size, err = io.Copy(io.Discard, p.reader()); err != nil {
		buf.Close()
		return nil, &bufferError{err: err}
	}
	return p, nil
}

// bufferError marks a failure of the buffer that holds prepared content.
type bufferError struct{ err error }

func (e *bufferError) Error() string {
	return "deliver: buffering the content: " + e.err.Error()
}
func (e *bufferError) Unwrap() error { return e.err }

// ReplyPrepareFailed returns the reply for this case: the content could not be held while it was
// converted or signed before the transaction (a temporary file that cannot be written; RFC 3463
// X.3.0).
func ReplyPrepareFailed() smtp.Reply {
	return smtp.NewReply(451, smtp.EnhMailSystem, "Local error preparing the message for the next hop")
}

// contentReply is the reply for a failure of the content: of the store,
// the converter, the signer, the buffer, or the 8-bit guard; hopUTF8 says
// whether the hop offers SMTPUTF8, to name the cause of a header the
// converter cannot make 7-bit.
func contentReply(err error, hopUTF8 bool) smtp.Reply {
	var se *storeError
	var ce *convError
	var be *bufferError
	switch {
	case errors.As(err, &se):
		return ReplyLocalReadError()
	case errors.As(err, &ce):
		var enh interface{ Enhanced() string }
		if errors.As(ce.err, &enh) && enh.Enhanced() == "5.6.9" {
			if hopUTF8 {
				return ReplyUTF8HeadersUndeclared()
			}
			return ReplyUTF8Headers()
		}
		return ReplyConversionFailed()
	case errors.Is(err, errEightBitLeak):
		return ReplyConversionFailed()
	case isSignError(err):
		return ReplySigningFailed()
	case errors.As(err, &be):
		return ReplyPrepareFailed()
	}
	return ReplyConnectionLost()
}
