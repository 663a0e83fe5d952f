package deliver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/tlspolicy"
)

// Timeouts are the client's idle timeouts per phase: each read or write of
// that phase must make progress within it (RFC 5321 §4.5.3.2). A zero field
// takes the default from DefaultTimeouts.
type Timeouts struct {
	Connect   time.Duration // TCP connect (not in RFC 5321)
	Greeting  time.Duration // initial 220: 5 minutes
	Hello     time.Duration // EHLO/HELO reply: 5 minutes, as MAIL
	StartTLS  time.Duration // STARTTLS reply and handshake
	Auth      time.Duration // each AUTH exchange
	Mail      time.Duration // MAIL reply: 5 minutes
	Rcpt      time.Duration // RCPT reply: 5 minutes
	DataInit  time.Duration // DATA's 354: 2 minutes
	DataBlock time.Duration // each write of content: 3 minutes
	DataTerm  time.Duration // reply to the final dot (or BDAT LAST): 10 minutes
	Rset      time.Duration // RSET reply
	Quit      time.Duration // QUIT reply
}

// DefaultTimeouts returns RFC 5321 §4.5.3.2's values, and short ones for
// the phases it does not name.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Connect:   30 * time.Second,
		Greeting:  5 * time.Minute,
		Hello:     5 * time.Minute,
		StartTLS:  2 * time.Minute,
		Auth:      2 * time.Minute,
		Mail:      5 * time.Minute,
		Rcpt:      5 * time.Minute,
		DataInit:  2 * time.Minute,
		DataBlock: 3 * time.Minute,
		DataTerm:  10 * time.Minute,
		Rset:      2 * time.Minute,
		Quit:      1 * time.Minute,
	}
}

// withDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&t.Connect, d.Connect)
	fill(&t.Greeting, d.Greeting)
	fill(&t.Hello, d.Hello)
	fill(&t.StartTLS, d.StartTLS)
	fill(&t.Auth, d.Auth)
	fill(&t.Mail, d.Mail)
	fill(&t.Rcpt, d.Rcpt)
	fill(&t.DataInit, d.DataInit)
	fill(&t.DataBlock, d.DataBlock)
	fill(&t.DataTerm, d.DataTerm)
	fill(&t.Rset, d.Rset)
	fill(&t.Quit, d.Quit)
	return t
}

// DialFunc opens a connection; net.Dialer's DialContext is one.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ReplyError is a negative reply to a command of the session set-up
// (greeting, EHLO, STARTTLS, AUTH, RSET).
type ReplyError struct {
	Command string // "greeting", "EHLO", "HELO", "STARTTLS", "AUTH", "RSET"
	Reply   smtp.Reply
}

// Error describes the command and the reply.
func (e *ReplyError) Error() string {
	return fmt.Sprintf("deliver: %s: %s", e.Command, e.Reply.String())
}

// Client is one SMTP connection to a next hop. It is not safe for
// concurrent use.
type Client struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	// dataBuf and copyBuf are the DATA writer's and the content copy's
	// buffers, kept for the connection's next message.
	dataBuf, copyBuf []byte
	// prepBuf is the memory of prepared content (prepare.go), kept for
	// the connection's next message.
	prepBuf  []byte
	target   route.Target
	timeouts Timeouts
	greeting smtp.Reply
	ehlo     smtp.Reply
	esmtp    bool
	offered  smtp.Extensions // as the hop sent them
	ext      smtp.Extensions // after the route's discard list
	preTLS   smtp.Extensions // offered before STARTTLS, when TLS is on
	tls      *tls.ConnectionState
	verified bool // the hop's certificate verified for its name
	// authTLS is set when TLS is up and the hop was authenticated by a
	// policy that REQUIRETLS accepts (DANE, MTA-STS, a tls=required
	// route's PKIX check).
	authTLS bool
	// policy is the TLS policy the connection was opened under.
	policy   tlspolicy.HostPolicy
	authed   bool
	messages int // messages accepted over this connection
	attempts int // transactions started
	broken   bool
	// dirty is set while a transaction may be open at the hop, so the
	// next one must start with RSET.
	dirty bool
	// conversion is the report of the last transfer's conversion.
	conversion *ConversionReport
	// tr records the session when set (SetTranscript); trFull records
	// content lines; trSecret marks the SASL lines being sent.
	tr       *maillog.Transcript
	trFull   bool
	trSecret bool
}

// Dial connects to target and reads the greeting. A greeting that is not
// 220 closes the connection and returns a *ReplyError.
func Dial(ctx context.Context, target route.Target, timeouts Timeouts, dial DialFunc) (*Client, error) {
	timeouts = timeouts.withDefaults()
	if dial == nil {
		d := &net.Dialer{}
		dial = d.DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, timeouts.Connect)
	defer cancel()
	conn, err := dial(dctx, "tcp", target.Addr())
	if err != nil {
		return nil, fmt.Errorf("deliver: connect to %s: %w", target, err)
	}
	c := &Client{
		conn:     conn,
		br:       bufio.NewReaderSize(conn, 8<<10),
		bw:       bufio.NewWriterSize(conn, 32<<10),
		target:   target,
		timeouts: timeouts,
	}
	defer c.watch(ctx)()
	rep, err := c.readReply(timeouts.Greeting)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("deliver: greeting from %s: %w", target, err)
	}
	c.greeting = rep
	if rep.Code != smtp.CodeReady {
		c.quitQuietly()
		return nil, &ReplyError{Command: "greeting", Reply: rep}
	}
	return c, nil
}

// Target returns the address the client is connected to.
func (c *Client) Target() route.Target { return c.target }

// Greeting returns the hop's greeting reply.
func (c *Client) Greeting() smtp.Reply { return c.greeting }

// HelloReply returns the reply to the last EHLO or HELO.
func (c *Client) HelloReply() smtp.Reply { return c.ehlo }

// ESMTP reports whether the hop accepted EHLO (false after HELO fallback).
func (c *Client) ESMTP() bool { return c.esmtp }

// Extensions returns the keywords in effect: those offered in the last EHLO
// reply minus the route's discard list.
func (c *Client) Extensions() smtp.Extensions { return c.ext }

// Offered returns the keywords of the last EHLO reply as the hop sent them.
func (c *Client) Offered() smtp.Extensions { return c.offered }

// OfferedBeforeTLS returns the keywords offered before STARTTLS, or nil
// when the session is not encrypted.
func (c *Client) OfferedBeforeTLS() smtp.Extensions { return c.preTLS }

// TLS returns the TLS connection state once STARTTLS succeeded.
func (c *Client) TLS() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tls, true
}

// TLSVerified reports whether the hop's certificate verified against the
// trusted roots for its host name, also when the route did not require it
// (opportunistic TLS, RFC 7435).
func (c *Client) TLSVerified() bool { return c.tls != nil && c.verified }

// LastConversion returns the converter's report for the last transfer,
// when its content was converted.
func (c *Client) LastConversion() (ConversionReport, bool) {
	if c.conversion == nil {
		return ConversionReport{}, false
	}
	return *c.conversion, true
}

// Messages returns how many messages the connection has carried.
func (c *Client) Messages() int { return c.messages }

// Hello sends EHLO name and falls back to HELO when the hop answers 500 or
// 502 (RFC 5321 §3.2). Keywords in discard (any case) are removed from
// Extensions, like Postfix's smtp_discard_ehlo_keywords.
func (c *Client) Hello(ctx context.Context, name string, discard []string) error {
	defer c.watch(ctx)()
	rep, err := c.cmd(c.timeouts.Hello, "EHLO "+name)
	if err != nil {
		return err
	}
	if rep.Code == smtp.CodeOK {
		c.esmtp = true
		c.ehlo = rep
		c.offered = smtp.ParseEHLOReply(rep)
	} else if rep.Code == smtp.CodeSyntaxError || rep.Code == smtp.CodeNotImplemented {
		hrep, err := c.cmd(c.timeouts.Hello, "HELO "+name)
		if err != nil {
			return err
		}
		if hrep.Code != smtp.CodeOK {
			return &ReplyError{Command: "HELO", Reply: hrep}
		}
		c.esmtp = false
		c.ehlo = hrep
		c.offered = smtp.Extensions{}
	} else {
		return &ReplyError{Command: "EHLO", Reply: rep}
	}
	c.ext = smtp.Extensions{}
	for k, v := range c.offered {
		if !slices.ContainsFunc(discard, func(d string) bool { return strings.EqualFold(d, k) }) {
			c.ext[k] = v
		}
	}
	return nil
}

// StartTLS sends STARTTLS and runs the TLS handshake (RFC 3207). The caller
// must call Hello again afterwards: the hop forgets the session state
// (RFC 3207 §4.2). A negative reply is a *ReplyError; a handshake or
// certificate failure is returned wrapped.
func (c *Client) StartTLS(ctx context.Context, cfg *tls.Config) error {
	defer c.watch(ctx)()
	rep, err := c.cmd(c.timeouts.StartTLS, "STARTTLS")
	if err != nil {
		return err
	}
	if rep.Code != smtp.CodeReady {
		return &ReplyError{Command: "STARTTLS", Reply: rep}
	}
	if c.br.Buffered() > 0 {
		// Data sent before the handshake could be injected plaintext
		// (the STARTTLS command-injection class of bugs).
		c.broken = true
		return errors.New("deliver: STARTTLS: hop sent data before the TLS handshake")
	}
	tc := tls.Client(c.conn, cfg)
	if err := tc.SetDeadline(time.Now().Add(c.timeouts.StartTLS)); err != nil {
		return fmt.Errorf("deliver: STARTTLS: %w", err)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		c.broken = true
		return fmt.Errorf("deliver: TLS handshake with %s: %w", c.target, err)
	}
	st := tc.ConnectionState()
	c.conn = tc
	c.br.Reset(tc)
	c.bw.Reset(tc)
	c.tls = &st
	c.verified = len(st.VerifiedChains) > 0 || (cfg.InsecureSkipVerify && verifyPeer(st, cfg) == nil)
	c.preTLS = c.offered
	c.offered, c.ext, c.esmtp = nil, nil, false
	return nil
}

// NeedsReset reports whether the last transaction was left open (refused
// recipients, an aborted transfer), so that RSET must come before the next
// MAIL. After a completed transaction none is needed, which saves a round
// trip per message on a reused connection.
func (c *Client) NeedsReset() bool { return c.dirty }

// Reset sends RSET: before a new transaction after one left open, and to
// check a pooled connection that sat idle.
func (c *Client) Reset(ctx context.Context) error {
	defer c.watch(ctx)()
	rep, err := c.cmd(c.timeouts.Rset, "RSET")
	if err != nil {
		return err
	}
	if rep.Code != smtp.CodeOK {
		c.broken = true
		return &ReplyError{Command: "RSET", Reply: rep}
	}
	c.dirty = false
	return nil
}

// Quit sends QUIT, reads the reply and closes the connection.
func (c *Client) Quit() error {
	defer c.Close()
	if c.broken {
		return errors.New("deliver: connection already broken")
	}
	rep, err := c.cmd(c.timeouts.Quit, "QUIT")
	if err != nil {
		return err
	}
	if rep.Code != smtp.CodeClosing {
		return &ReplyError{Command: "QUIT", Reply: rep}
	}
	return nil
}

// quitQuietly ends the session, ignoring errors: used when giving up.
func (c *Client) quitQuietly() { _ = c.Quit() }

// Close closes the connection without QUIT.
func (c *Client) Close() error {
	c.broken = true
	c.closeTranscript()
	return c.conn.Close()
}

// Broken reports whether the connection can no longer be used.
func (c *Client) Broken() bool { return c.broken }

// watch makes ctx's cancellation interrupt blocked reads and writes; call
// the returned function when the operation ends.
func (c *Client) watch(ctx context.Context) func() {
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// cmd writes one command line and reads its reply.
func (c *Client) cmd(timeout time.Duration, line string) (smtp.Reply, error) {
	if err := c.writeLine(timeout, line); err != nil {
		return smtp.Reply{}, err
	}
	if err := c.flush(timeout); err != nil {
		return smtp.Reply{}, err
	}
	return c.readReply(timeout)
}

// writeLine buffers one command line with CRLF; flush sends it.
func (c *Client) writeLine(timeout time.Duration, line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("deliver: refusing to send a command with CR or LF: %q", line)
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return c.ioErr(err)
	}
	c.transcribeLine(line)
	if _, err := c.bw.WriteString(line); err != nil {
		return c.ioErr(err)
	}
	if _, err := c.bw.WriteString("\r\n"); err != nil {
		return c.ioErr(err)
	}
	return nil
}

// flush sends buffered commands.
func (c *Client) flush(timeout time.Duration) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return c.ioErr(err)
	}
	if err := c.bw.Flush(); err != nil {
		return c.ioErr(err)
	}
	return nil
}

// readReply reads one reply within timeout. A 421 marks the connection
// broken: the hop is closing it (RFC 5321 §3.8).
func (c *Client) readReply(timeout time.Duration) (smtp.Reply, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return smtp.Reply{}, c.ioErr(err)
	}
	rep, err := smtp.ReadReply(c.br)
	if err != nil {
		return smtp.Reply{}, c.ioErr(err)
	}
	c.tr.Server(rep)
	if rep.Code == smtp.CodeServiceNotAvailable {
		c.broken = true
	}
	return rep, nil
}

// ioErr marks the connection broken and returns err.
func (c *Client) ioErr(err error) error {
	c.broken = true
	return err
}

// writerFunc adapts a function to io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// blockWriter returns a writer to the connection that renews the write
// deadline before each write (the 3-minute data block timeout).
func (c *Client) blockWriter() io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if err := c.conn.SetWriteDeadline(time.Now().Add(c.timeouts.DataBlock)); err != nil {
			return 0, err
		}
		return c.conn.Write(p)
	})
}
