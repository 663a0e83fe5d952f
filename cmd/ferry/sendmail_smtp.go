package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// sendmailTimeout bounds each step of the submission to the local relay.
const sendmailTimeout = 5 * time.Minute

// submitError is a refusal or failure of the submission with the exit
// status it maps to.
type submitError struct {
	code int
	err  error
}

func (e *submitError) Error() string { return e.err.Error() }
func (e *submitError) Unwrap() error { return e.err }

// submit sends s over SMTP to the relay at addr, greeting it as helo, and
// returns the queue ID of the 250 reply. The transaction is abandoned
// (nothing queued) unless every recipient is accepted. On failure the
// status is the sysexits.h code for the caller.
func submit(addr, helo string, s submission) (string, int, error) {
	conn, err := net.DialTimeout("tcp", addr, sendmailTimeout)
	if err != nil {
		return "", exTempFail, fmt.Errorf("cannot reach the relay (is ferry serve running?): %w", err)
	}
	defer conn.Close()
	c := &submitConn{conn: conn, r: bufio.NewReader(conn)}
	id, err := c.transaction(helo, s)
	if err != nil {
		var se *submitError
		if errors.As(err, &se) {
			return "", se.code, se.err
		}
		return "", exTempFail, err
	}
	return id, exOK, nil
}

// submitConn is the client side of one submission.
type submitConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// transaction runs greeting, EHLO, MAIL, RCPT, DATA and QUIT.
func (c *submitConn) transaction(helo string, s submission) (string, error) {
	if _, err := c.expect("greeting", 2); err != nil {
		return "", err
	}
	ehlo, err := c.cmd("EHLO "+helo, 2)
	if err != nil {
		return "", err
	}
	ext := smtp.ParseEHLOReply(ehlo)
	mailCmd := "MAIL FROM:" + s.from.String()
	if s.body8 && ext.Has("8BITMIME") {
		mailCmd += " BODY=8BITMIME"
	}
	if (!s.from.IsASCII() || !rcptsASCII(s.rcpts)) && ext.Has("SMTPUTF8") {
		mailCmd += " SMTPUTF8"
	}
	if _, err := c.cmd(mailCmd, 2); err != nil {
		return "", err
	}
	for _, r := range s.rcpts {
		if _, err := c.cmd("RCPT TO:"+r.String(), 2); err != nil {
			c.cmd("RSET", 2) // nothing is queued unless every recipient is taken
			c.cmd("QUIT", 2)
			return "", err
		}
	}
	if _, err := c.cmd("DATA", 3); err != nil {
		return "", err
	}
	c.conn.SetWriteDeadline(time.Now().Add(sendmailTimeout))
	w := bufio.NewWriter(c.conn)
	dw := smtp.NewDataWriter(w)
	if _, err := dw.Write(s.header); err != nil {
		return "", fmt.Errorf("sending the message: %w", err)
	}
	if _, err := dw.Write(s.body); err != nil {
		return "", fmt.Errorf("sending the message: %w", err)
	}
	if err := dw.Close(); err != nil {
		return "", fmt.Errorf("sending the message: %w", err)
	}
	if err := w.Flush(); err != nil {
		return "", fmt.Errorf("sending the message: %w", err)
	}
	rep, err := c.expect("the message", 2)
	if err != nil {
		return "", err
	}
	c.cmd("QUIT", 2)
	_, id, _ := strings.Cut(rep.Text(), "queued as ")
	id, _, _ = strings.Cut(id, " ")
	return id, nil
}

// cmd sends line and reads its reply, which must be of class want.
func (c *submitConn) cmd(line string, want int) (smtp.Reply, error) {
	c.conn.SetWriteDeadline(time.Now().Add(sendmailTimeout))
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		return smtp.Reply{}, fmt.Errorf("sending %s: %w", commandVerb(line), err)
	}
	return c.expect(commandVerb(line), want)
}

// expect reads one reply to what, which must be of class want; another
// reply is a *submitError with its sysexits.h status.
func (c *submitConn) expect(what string, want int) (smtp.Reply, error) {
	c.conn.SetReadDeadline(time.Now().Add(sendmailTimeout))
	rep, err := smtp.ReadReply(c.r)
	if err != nil {
		if errors.Is(err, smtp.ErrMalformedReply) {
			return rep, &submitError{exProtocol, fmt.Errorf("reply to %s: %w", what, err)}
		}
		return rep, fmt.Errorf("reply to %s: %w", what, err)
	}
	if rep.Class() == want {
		return rep, nil
	}
	return rep, &submitError{replyStatus(what, rep), fmt.Errorf("%s refused: %s", what, rep)}
}

// replyStatus maps a refusal to sysexits.h: a temporary one to
// EX_TEMPFAIL; for a permanent one, relaying denied (5.7.x) to EX_NOPERM,
// a refused recipient to EX_NOUSER, a bad address or message to
// EX_DATAERR, anything else to EX_UNAVAILABLE (RFC 3463 for the codes).
func replyStatus(what string, rep smtp.Reply) int {
	e := string(rep.Enhanced)
	switch {
	case rep.Temporary():
		return exTempFail
	case !rep.Permanent():
		return exProtocol
	case strings.HasPrefix(e, "5.7."):
		return exNoPerm
	case what == "RCPT":
		return exNoUser
	case strings.HasPrefix(e, "5.1.") || strings.HasPrefix(e, "5.6.") || strings.HasPrefix(e, "5.3.4"):
		return exDataErr
	}
	return exUnavailable
}

// commandVerb is a command line's verb, for messages ("MAIL", "RCPT").
func commandVerb(line string) string {
	v, _, _ := strings.Cut(line, " ")
	if i := strings.IndexByte(v, ':'); i > 0 {
		v = v[:i]
	}
	return v
}

// rcptsASCII reports whether every recipient is ASCII.
func rcptsASCII(ps []smtp.Path) bool {
	for _, p := range ps {
		if !p.IsASCII() {
			return false
		}
	}
	return true
}
