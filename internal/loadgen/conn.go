package loadgen

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// clientConn is one SMTP client connection of a run.
type clientConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	r    *run
}

// deadline arms the connection's deadline for the next exchange: the I/O
// timeout, but never past the run's deadline.
func (c *clientConn) deadline() {
	d := time.Now().Add(c.r.cfg.IOTimeout)
	if c.r.cfg.Deadline.Before(d) {
		d = c.r.cfg.Deadline
	}
	_ = c.conn.SetDeadline(d)
}

// read reads one reply.
func (c *clientConn) read() (smtp.Reply, error) { return smtp.ReadReply(c.br) }

// hello reads the greeting and sends EHLO (falling back to HELO when EHLO
// is refused, RFC 5321 §3.2). A non-nil reply is a refusal.
func (c *clientConn) hello() (smtp.Extensions, *smtp.Reply, error) {
	c.deadline()
	g, err := c.read()
	if err != nil {
		return nil, nil, err
	}
	if g.Code != 220 {
		return nil, &g, nil
	}
	if _, err := c.bw.WriteString("EHLO " + c.r.cfg.HeloName + "\r\n"); err != nil {
		return nil, nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	e, err := c.read()
	if err != nil {
		return nil, nil, err
	}
	if e.Code == 250 {
		return smtp.ParseEHLOReply(e), nil, nil
	}
	if _, err := c.bw.WriteString("HELO " + c.r.cfg.HeloName + "\r\n"); err != nil {
		return nil, nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	h, err := c.read()
	if err != nil {
		return nil, nil, err
	}
	if h.Code != 250 {
		return nil, &h, nil
	}
	return smtp.Extensions{}, nil, nil
}

// transaction sends message seq and reports whether the connection can go
// on. It counts the message as accepted or failed.
func (c *clientConn) transaction(ctx context.Context, seq int, ext smtp.Extensions, rec *recorder) bool {
	t := c.r.tmpl
	mail := "MAIL FROM:<" + t.from + ">"
	if ext.Has("SIZE") {
		mail += " SIZE=" + strconv.Itoa(t.size)
	}
	if t.eightBit && ext.Has("8BITMIME") {
		mail += " BODY=8BITMIME"
	}
	c.deadline()
	begin := time.Now()
	pipelined := c.r.cfg.Pipelining && ext.Has("PIPELINING")
	cmds := []string{mail + "\r\n", "RCPT TO:<" + t.to + ">\r\n", "DATA\r\n"}
	want := []int{250, 250, 354}
	var failed *smtp.Reply
	if pipelined {
		// RFC 2920 §3.1: MAIL, RCPT and DATA may go in one group; read
		// every reply even after a failure, to stay in step.
		for _, cmd := range cmds {
			if _, err := c.bw.WriteString(cmd); err != nil {
				return c.ioFail(ctx)
			}
		}
		if err := c.bw.Flush(); err != nil {
			return c.ioFail(ctx)
		}
		for i := range cmds {
			rp, err := c.read()
			if err != nil {
				return c.ioFail(ctx)
			}
			if rp.Code != want[i] && failed == nil {
				failed = &rp
			}
		}
	} else {
		for i, cmd := range cmds {
			if _, err := c.bw.WriteString(cmd); err != nil {
				return c.ioFail(ctx)
			}
			if err := c.bw.Flush(); err != nil {
				return c.ioFail(ctx)
			}
			rp, err := c.read()
			if err != nil {
				return c.ioFail(ctx)
			}
			if rp.Code != want[i] {
				failed = &rp
				break
			}
		}
	}
	if failed != nil {
		c.r.fail(replyKey(*failed))
		if failed.Code == 421 {
			return false
		}
		if failed.Code == 354 { // a refused command and yet a 354: end the data
			_, _ = c.bw.WriteString(".\r\n")
			_ = c.bw.Flush()
			_, _ = c.read()
		}
		return c.reset()
	}
	c.deadline()
	if _, err := c.bw.Write(t.header(c.r.cfg.SeqBase + seq)); err != nil {
		return c.ioFail(ctx)
	}
	if _, err := c.bw.Write(t.wire); err != nil {
		return c.ioFail(ctx)
	}
	if err := c.bw.Flush(); err != nil {
		return c.ioFail(ctx)
	}
	c.deadline()
	rp, err := c.read()
	if err != nil {
		return c.ioFail(ctx)
	}
	if rp.Code != 250 {
		c.r.fail(replyKey(rp))
		return rp.Code != 421
	}
	now := time.Now()
	rec.add(now.Sub(begin))
	c.r.accept(seq, now)
	return true
}

// ioFail counts the current message as failed without a reply and ends
// the connection.
func (c *clientConn) ioFail(ctx context.Context) bool {
	c.r.fail(c.r.errKey(ctx, "io"))
	return false
}

// reset sends RSET after a refused transaction and reports whether the
// connection is still usable.
func (c *clientConn) reset() bool {
	if _, err := c.bw.WriteString("RSET\r\n"); err != nil {
		return false
	}
	if err := c.bw.Flush(); err != nil {
		return false
	}
	rp, err := c.read()
	return err == nil && rp.Code == 250
}

// quit ends the session politely, with a short deadline.
func (c *clientConn) quit() {
	_ = c.conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.bw.WriteString("QUIT\r\n"); err == nil && c.bw.Flush() == nil {
		_, _ = c.read()
	}
}
