package deliver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Message is one message to transmit: the envelope, which of its
// recipients to attempt now, and the stored content.
type Message struct {
	Env *smtp.Envelope
	// Rcpts are indexes into Env.Rcpts.
	Rcpts []int
	// Body is the stored content (the queue keeps the original; any
	// conversion happens on the way out, or before the transaction when
	// the content is prepared).
	Body io.Reader
	// content, when set, is the content made ready before the
	// transaction (prepare): converted and signed already, and sent as
	// it is instead of Body.
	content *prepared
}

// Converter rewrites content for a hop that cannot take it as it is (see
// internal/downgrade and Downgrader). t.EightBit says whether the output
// may hold octets > 127 (the hop offered 8BITMIME); either way it must hold
// no NUL, no bare CR or LF and no line over 998 octets. An error means the
// content could not be converted losslessly; an error with an
// Enhanced() string method returning "5.6.9" means the header needs
// SMTPUTF8.
type Converter interface {
	Convert(dst io.Writer, src io.Reader, t ConversionTarget) (ConversionReport, error)
}

// ConversionTarget is what a converter's output may hold, from the plan.
type ConversionTarget struct {
	// EightBit: octets > 127 may reach the wire (TransferPlan.Allow8Bit:
	// the hop offered 8BITMIME, RFC 6152).
	EightBit bool
	// SMTPUTF8: the message goes with SMTPUTF8 (TransferPlan.SMTPUTF8),
	// so header fields may keep 8-bit text (RFC 6532 §3.2).
	SMTPUTF8 bool
}

// TargetOf returns the conversion target of plan p.
func TargetOf(p TransferPlan) ConversionTarget {
	return ConversionTarget{EightBit: p.Allow8Bit, SMTPUTF8: p.SMTPUTF8}
}

// ConversionReport is what a converter did, for the log.
type ConversionReport struct {
	// Changed is set when the output differs from the input.
	Changed bool
	// Summary describes the changes in a few words, e.g.
	// "2 parts re-encoded (quoted-printable, base64)".
	Summary string
	// DKIMSigned is set when the message carried a DKIM signature that
	// the change invalidated (RFC 6376 §5.3).
	DKIMSigned bool
}

// Replies Ferry makes up when the hop gave none follow.

// ReplyConnectionLost returns the reply for this case: the connection failed mid-transaction; every
// recipient not yet accepted is retried (RFC 3463 X.4.2).
func ReplyConnectionLost() smtp.Reply {
	return smtp.NewReply(451, smtp.EnhBadConnection, "Lost connection with next hop during the transaction")
}

// ReplyLocalReadError returns the reply for this case: the stored message could not be read.
func ReplyLocalReadError() smtp.Reply {
	return smtp.NewReply(451, smtp.EnhMailSystem, "Local error reading the queued message")
}

// errEightBitLeak stops a transfer that would put an octet > 127 (or a
// NUL) on the wire of a hop that did not agree to it (RFC 6152 §3).
var errEightBitLeak = errors.New("deliver: content holds octets the next hop did not agree to receive")

// convError marks a converter failure.
type convError struct{ err error }

func (e *convError) Error() string { return "deliver: conversion: " + e.err.Error() }
func (e *convError) Unwrap() error { return e.err }

// storeError marks a failure reading the stored content.
type storeError struct{ err error }

func (e *storeError) Error() string { return "deliver: reading the queued message: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// Send runs one mail transaction with plan and returns one reply per entry
// of m.Rcpts, in order: the RCPT reply for a refused recipient, else the
// reply to the end of data, else the reason the transaction stopped. With
// PIPELINING, MAIL, every RCPT and DATA go out in one write (RFC 2920 §3.1).
// The error is non-nil when the connection cannot carry another message;
// the replies are filled even then. conv may be nil when plan.Convert is
// false or the content is prepared (m.content), which keeps the report of
// its conversion.
func (c *Client) Send(ctx context.Context, m Message, plan TransferPlan, conv Converter) ([]smtp.Reply, error) {
	defer c.watch(ctx)()
	c.attempts++
	if m.content == nil {
		c.conversion = nil
	}
	replies := make([]smtp.Reply, len(m.Rcpts))
	from := m.Env.From
	if plan.ALabels {
		var err error
		if from, err = aLabelPath(from); err != nil {
			fill(replies, ReplyNonASCIIAddress())
			return replies, nil
		}
	}
	// Recipients to send, as positions in m.Rcpts.
	var active []int
	rcptLines := make([]string, len(m.Rcpts))
	for i, idx := range m.Rcpts {
		r := m.Env.Rcpts[idx]
		addr := r.Addr
		if plan.ALabels {
			var err error
			if addr, err = aLabelPath(addr); err != nil {
				replies[i] = ReplyNonASCIIAddress()
				continue
			}
		}
		rcptLines[i] = "RCPT TO:" + addr.String() + rcptParams(r, plan)
		active = append(active, i)
	}
	if len(active) == 0 {
		return replies, nil
	}
	mailLine := "MAIL FROM:" + from.String() + mailParams(m.Env, plan)

	rcptReps := make([]smtp.Reply, len(m.Rcpts))
	var mailRep, dataRep smtp.Reply
	useData := !plan.Chunking
	// The reply to the end of the content ends the transaction whatever it
	// says (RFC 5321 §4.1.1.4, RFC 3030 §2); any other way out leaves
	// state at the hop that RSET must clear before the next MAIL.
	c.dirty = true
	ended := func(r smtp.Reply, err error) (smtp.Reply, error) {
		c.dirty = err != nil
		return r, err
	}
	final, ioErr := func() (smtp.Reply, error) {
		if c.ext.Has("PIPELINING") {
			if err := c.writeLine(c.timeouts.Mail, mailLine); err != nil {
				return ReplyConnectionLost(), err
			}
			for _, i := range active {
				if err := c.writeLine(c.timeouts.Rcpt, rcptLines[i]); err != nil {
					return ReplyConnectionLost(), err
				}
			}
			if useData {
				if err := c.writeLine(c.timeouts.DataInit, "DATA"); err != nil {
					return ReplyConnectionLost(), err
				}
			}
			if err := c.flush(c.timeouts.Mail); err != nil {
				return ReplyConnectionLost(), err
			}
		}
		pipelined := c.ext.Has("PIPELINING")
		var err error
		if mailRep, err = c.step(pipelined, c.timeouts.Mail, mailLine); err != nil {
			return ReplyConnectionLost(), err
		}
		if mailRep.Code == smtp.CodeServiceNotAvailable {
			return mailRep, nil
		}
		if !pipelined && !mailRep.Positive() {
			return mailRep, nil
		}
		accepted := 0
		for _, i := range active {
			if rcptReps[i], err = c.step(pipelined, c.timeouts.Rcpt, rcptLines[i]); err != nil {
				return ReplyConnectionLost(), err
			}
			if rcptReps[i].Code == smtp.CodeServiceNotAvailable {
				return rcptReps[i], nil
			}
			if rcptReps[i].Positive() {
				accepted++
			}
		}
		if !mailRep.Positive() {
			accepted = 0
		}
		if !useData {
			if accepted == 0 {
				return mailRep, nil
			}
			return ended(c.sendBDAT(plan, c.content(m, plan, conv)))
		}
		if pipelined || accepted > 0 {
			if dataRep, err = c.step(pipelined, c.timeouts.DataInit, "DATA"); err != nil {
				return ReplyConnectionLost(), err
			}
		}
		if accepted == 0 {
			if dataRep.Code == smtp.CodeStartMailInput {
				// The hop said go ahead with nobody to deliver to
				// (RFC 2920 §3.1): send an empty message to end
				// the data phase, and ignore its reply.
				if _, err := c.cmd(c.timeouts.DataTerm, "."); err != nil {
					return ReplyConnectionLost(), err
				}
			}
			return mailRep, nil
		}
		if dataRep.Code != smtp.CodeStartMailInput {
			return dataRep, nil
		}
		return ended(c.sendData(plan, c.content(m, plan, conv)))
	}()
	for _, i := range active {
		switch {
		case mailRep.Code != 0 && !mailRep.Positive():
			replies[i] = mailRep
		case rcptReps[i].Code != 0 && !rcptReps[i].Positive():
			replies[i] = rcptReps[i]
		default:
			replies[i] = final
		}
	}
	if ioErr != nil || c.broken {
		c.broken = true
		if ioErr == nil {
			ioErr = fmt.Errorf("deliver: %s closed the session: %s", c.target, final.String())
		}
		_ = c.conn.Close()
		return replies, ioErr
	}
	c.messages++
	return replies, nil
}

// step reads the reply to a pipelined command, or sends the command and
// reads its reply when not pipelining.
func (c *Client) step(pipelined bool, timeout time.Duration, line string) (smtp.Reply, error) {
	if pipelined {
		return c.readReply(timeout)
	}
	return c.cmd(timeout, line)
}

// sendData sends the content that open returns after 354, dot-stuffed,
// and reads the reply to the final dot. A failure of the content source
// closes the connection without the final dot, so the hop discards the
// partial message.
//
// The connection's buffers are reused from one message to the next.
func (c *Client) sendData(plan TransferPlan, open func() (io.Reader, func())) (smtp.Reply, error) {
	src, stop := open()
	defer stop()
	rec := c.recordContent()
	defer rec.note("not sent")
	src = teeContent(src, rec)
	c.buffers()
	dw := smtp.NewDataWriterBuffer(c.blockWriter(), c.dataBuf)
	// DATA never carries NUL; octets > 127 only when the plan allows.
	dst := guardWriter{w: dw, deny8: !plan.Allow8Bit}
	if err := copyContent(dst, src, c.copyBuf); err != nil {
		return c.abortContent(err)
	}
	if err := dw.Close(); err != nil {
		return ReplyConnectionLost(), c.ioErr(err)
	}
	rec.note("sent")
	rep, err := c.readReply(c.timeouts.DataTerm)
	if err != nil {
		return ReplyConnectionLost(), err
	}
	return rep, nil
}

// sendBDAT sends the content in BDAT chunks (RFC 3030 §2), the last one
// marked LAST, and returns the reply to the last chunk or the first
// negative reply. The content is what open returns.
func (c *Client) sendBDAT(plan TransferPlan, open func() (io.Reader, func())) (smtp.Reply, error) {
	src, stop := open()
	defer stop()
	rec := c.recordContent()
	defer rec.note("not sent")
	buf := make([]byte, 256<<10)
	for {
		n, err := io.ReadFull(src, buf)
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return c.abortContent(err)
		}
		if !plan.Allow8Bit {
			if gerr := (guardWriter{deny8: true}).check(buf[:n]); gerr != nil {
				return c.abortContent(gerr)
			}
		}
		line := "BDAT " + strconv.Itoa(n)
		if last {
			line += " LAST"
		}
		if err := c.writeLine(c.timeouts.DataBlock, line); err != nil {
			return ReplyConnectionLost(), err
		}
		if err := c.conn.SetWriteDeadline(time.Now().Add(c.timeouts.DataBlock)); err != nil {
			return ReplyConnectionLost(), c.ioErr(err)
		}
		if _, err := c.bw.Write(buf[:n]); err != nil {
			return ReplyConnectionLost(), c.ioErr(err)
		}
		_, _ = rec.Write(buf[:n])
		if err := c.flush(c.timeouts.DataBlock); err != nil {
			return ReplyConnectionLost(), err
		}
		timeout := c.timeouts.DataBlock
		if last {
			timeout = c.timeouts.DataTerm
			rec.note("sent")
		}
		rep, err := c.readReply(timeout)
		if err != nil {
			return ReplyConnectionLost(), err
		}
		if !rep.Positive() || last {
			return rep, nil
		}
	}
}

// abortContent ends a transfer whose content failed: the connection is
// closed without ending the data, and the recipients get the reply that
// matches the cause.
func (c *Client) abortContent(err error) (smtp.Reply, error) {
	c.broken = true
	_ = c.conn.Close()
	return contentReply(err, c.Extensions().Has("SMTPUTF8")), err
}

// content returns the opener of what goes on the wire: the prepared
// content, or the stored body, converted on the way through a pipe when
// plan says so. Its stop ends the converter and stores its report for
// LastConversion.
func (c *Client) content(m Message, plan TransferPlan, conv Converter) func() (io.Reader, func()) {
	return func() (io.Reader, func()) {
		if m.content != nil {
			return m.content.reader(), func() {}
		}
		return c.converted(m.Body, plan, conv)
	}
}

// converted returns the stored body, or the converter's output streamed
// through a pipe; stop ends the converter and stores its report.
func (c *Client) converted(body io.Reader, plan TransferPlan, conv Converter) (io.Reader, func()) {
	c.conversion = nil
	tagged := &storeReader{r: body}
	if !plan.Convert {
		return tagged, func() {}
	}
	if conv == nil {
		pr, pw := io.Pipe()
		pw.CloseWithError(&convError{err: errors.New("no converter configured")})
		return pr, func() {}
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var rep ConversionReport
	go func() {
		defer close(done)
		var err error
		rep, err = conv.Convert(pw, tagged, TargetOf(plan))
		switch {
		case tagged.err != nil:
			err = &storeError{err: tagged.err}
		case err != nil:
			err = &convError{err: err}
		}
		pw.CloseWithError(err)
	}()
	return pr, func() {
		pr.CloseWithError(errors.New("deliver: transfer ended"))
		<-done
		c.conversion = &rep
	}
}

// storeReader tags read errors of the stored content.
type storeReader struct {
	r   io.Reader
	err error
}

func (s *storeReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
		return n, &storeError{err: err}
	}
	return n, err
}

// copyContent copies src to dst through buf, keeping source errors
// distinguishable from write errors.
func copyContent(dst io.Writer, src io.Reader, buf []byte) error {
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// guardWriter refuses content a hop did not agree to: octets > 127 when
// deny8, and NUL always (only BINARYMIME carries NUL, and it bypasses the
// guard). It is the last line of defence for RFC 6152 §3.
type guardWriter struct {
	w     io.Writer
	deny8 bool
}

func (g guardWriter) check(p []byte) error {
	// Eight octets at a time: a NUL makes (w - 0x01…01) &^ w set the
	// high bit of some octet (and nothing else does), an octet > 127
	// has its own high bit set.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	high := uint64(0)
	if g.deny8 {
		high = highs
	}
	i := 0
	for ; i+8 <= len(p); i += 8 {
		w := binary.LittleEndian.Uint64(p[i:])
		if (w-ones)&^w&highs != 0 || w&high != 0 {
			return errEightBitLeak
		}
	}
	for _, b := range p[i:] {
		if b == 0 || g.deny8 && b > 127 {
			return errEightBitLeak
		}
	}
	return nil
}

func (g guardWriter) Write(p []byte) (int, error) {
	if err := g.check(p); err != nil {
		return 0, err
	}
	return g.w.Write(p)
}

// fill sets every reply to r.
func fill(replies []smtp.Reply, r smtp.Reply) {
	for i := range replies {
		replies[i] = r
	}
}

// buffers makes the connection's DATA writer and copy buffers, kept from
// one message to the next.
func (c *Client) buffers() {
	if c.dataBuf == nil {
		c.dataBuf, c.copyBuf = make([]byte, 0, 32<<10), make([]byte, 32<<10)
	}
}
