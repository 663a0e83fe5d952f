package smtpd

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/smtp"
)

// session is one SMTP connection's state.
type session struct {
	srv  *Server
	conn *idleConn
	r    *bufio.Reader
	w    *bufio.Writer
	info SessionInfo
	log  *slog.Logger
	tr   *maillog.Transcript
	// trFull records message content in tr line by line.
	trFull bool

	counts maillog.CommandCounts
	errors int
	done   bool
	// heard is set once the client has sent its first command line;
	// until then reads wait Timeouts.Greeting rather than Timeouts.Command.
	heard bool
	line  string // the command being answered, for the log
	// reason is why the policy refused the command being answered, for
	// its reject line; "" otherwise.
	reason string
	// phaseEnd is when the current session phase (hello or envelope) must
	// be over; inTx says which phase it is. queued is set when a message
	// was stored since the hello phase began: only then does the end of a
	// transaction start a new one (MAIL, RSET, MAIL… does not).
	phaseEnd time.Time
	helloEnd time.Time // when the current hello phase ends
	inTx     bool
	queued   bool

	// The current transaction; env is nil outside one.
	env  *smtp.Envelope
	tx   *Transaction
	bdat *bdatTransfer
}

// runSession serves one connection until it ends.
func (s *Server) runSession(c *idleConn) {
	ss := &session{
		srv:  s,
		conn: c,
		r:    s.bufs.reader(c),
		w:    s.bufs.writer(c),
		info: SessionInfo{ID: s.newSessionID(), Remote: c.RemoteAddr()},
		log:  s.cfg.Logger,
	}
	ss.openTranscript()
	maillog.Connect(ss.log, ss.info.ID, c.RemoteAddr().String())
	defer func() {
		ss.resetTransaction()
		ss.w.Flush()
		maillog.Disconnect(ss.log, ss.info.ID, c.RemoteAddr().String(), &ss.counts)
		ss.tr.Close()
		s.bufs.put(ss.r, ss.w)
	}()
	if s.cfg.ImplicitTLS && !ss.handshake() {
		return // RFC 8314 §3.3: the TLS handshake comes before the greeting
	}
	if r := s.policy.Connect(c.RemoteAddr()); r != nil {
		maillog.Reject(ss.log, ss.info.ID, "CONNECT", *r)
		ss.send(*r)
		return
	}
	if w := s.cfg.Timeouts.PregreetWait; w > 0 && !c.trusted && !ss.waitBeforeGreeting(w) {
		return
	}
	banner := s.cfg.Hostname + " ESMTP Ferry"
	if s.cfg.NoESMTP {
		banner = s.cfg.Hostname + " SMTP Ferry"
	}
	ss.send(smtp.NewReply(smtp.CodeReady, "", banner))
	ss.loop()
}

// loop reads and runs commands until the session ends.
func (ss *session) loop() {
	cfg := &ss.srv.cfg
	for !ss.done {
		// RFC 2920 §3.1: replies are flushed when no more input is waiting.
		if ss.r.Buffered() == 0 {
			if err := ss.w.Flush(); err != nil {
				return
			}
		}
		if ss.env == nil && ss.conn.shuttingDown() {
			ss.send(replyShutdown(cfg.Hostname))
			return
		}
		ss.setCommandDeadline()
		line, err := readCommandLine(ss.r)
		ss.heard = ss.heard || err == nil || errors.Is(err, errLineTooLong)
		switch {
		case errors.Is(err, errLineTooLong):
			ss.tr.Client("<command line over 512 octets>")
			ss.counts.Record("unknown", false)
			ss.replyCmd("", replyLineTooLong())
			continue
		case err != nil:
			ss.readFailed()
			return
		}
		ss.tr.Client(line)
		ss.line = maillog.RedactCommand(line)
		ss.command(line)
	}
}

// setCommandDeadline bounds the read of the next command line: the whole
// line must arrive within Timeouts.Command (Greeting for the first) and
// within the current phase. Between BDAT chunks the transfer's own limit
// stays in force.
func (ss *session) setCommandDeadline() {
	cfg := &ss.srv.cfg
	now := time.Now()
	switch inTx := ss.env != nil; {
	case ss.phaseEnd.IsZero():
		ss.phaseEnd = now.Add(cfg.Timeouts.HelloPhase)
		ss.helloEnd = ss.phaseEnd
	case inTx && !ss.inTx:
		ss.inTx = true
		ss.phaseEnd = now.Add(cfg.Timeouts.EnvelopePhase)
	case !inTx && ss.inTx:
		// Back in the hello phase: a fresh one after a stored message,
		// else the rest of the one before the transaction.
		ss.inTx = false
		if ss.queued {
			ss.queued = false
			ss.helloEnd = now.Add(cfg.Timeouts.HelloPhase)
		}
		ss.phaseEnd = ss.helloEnd
	}
	timeout := cfg.Timeouts.Command
	if !ss.heard {
		timeout = cfg.Timeouts.Greeting
	}
	ss.conn.setReadTimeout(timeout, ss.env == nil)
	if ss.bdat != nil {
		return
	}
	limit := now.Add(timeout)
	if ss.phaseEnd.Before(limit) {
		limit = ss.phaseEnd
	}
	ss.conn.setReadLimit(limit)
}

// waitBeforeGreeting waits up to d before the greeting (RFC 5321 §3.1: the
// client must wait for it) and reports whether the session goes on. A
// client that sends anything in that time is refused at once with 554
// 5.5.1; one that disconnects, or a shutdown, ends the session silently.
func (ss *session) waitBeforeGreeting(d time.Duration) bool {
	ss.conn.setReadTimeout(d, true)
	_, err := ss.r.Peek(1)
	if err == nil {
		r := replyPregreet(ss.srv.cfg.Hostname)
		ss.tr.Note("<client sent data before the greeting>")
		maillog.Reject(ss.log, ss.info.ID, "CONNECT", r)
		ss.send(r)
		return false
	}
	if !ss.conn.timedOut() || ss.conn.shuttingDown() {
		return false
	}
	ss.conn.clearReadErr() // the silence was what the wait hoped for
	return true
}

// readFailed ends the session after a failed read with the right reply.
func (ss *session) readFailed() {
	switch {
	case ss.conn.shuttingDown() && ss.env == nil:
		ss.send(replyShutdown(ss.srv.cfg.Hostname))
	case ss.conn.timedOut():
		r := replyTimeout(ss.srv.cfg.Hostname)
		maillog.Reject(ss.log, ss.info.ID, "TIMEOUT", r)
		ss.send(r)
	}
}

// send writes r and flushes it.
func (ss *session) send(r smtp.Reply) {
	ss.reply(r)
	ss.w.Flush()
}

// reply queues r for sending.
func (ss *session) reply(r smtp.Reply) {
	// Enhanced status codes are in effect once the client said EHLO and was
	// offered ENHANCEDSTATUSCODES (RFC 2034 §3), not after HELO.
	enhanced := ss.srv.ext.enhanced && (ss.info.ESMTP || ss.info.Helo == "")
	if !enhanced {
		r.Enhanced = ""
	}
	ss.tr.Server(r)
	ss.w.Write(r.Format(enhanced))
}

// replyCmd sends the reply to a command, counting and logging negative
// replies; after MaxErrors of them the session is closed with 421.
func (ss *session) replyCmd(verb string, r smtp.Reply) {
	ss.reply(r)
	if r.Code == smtp.CodeServiceNotAvailable {
		// 421 closes the channel (RFC 5321 §3.8), whoever chose it.
		ss.done = true
		return
	}
	if r.Positive() {
		return
	}
	switch verb {
	case "MAIL", "RCPT", "DATA", "BDAT":
		attrs := []slog.Attr{slog.String("command", ss.line)}
		if ss.env != nil {
			attrs = append(attrs, slog.String("from", ss.env.From.String()))
		}
		if ss.reason != "" {
			attrs = append(attrs, slog.String("reason", ss.reason))
		}
		maillog.Reject(ss.log, ss.info.ID, verb, r, attrs...)
	}
	if r.Enhanced == smtp.EnhTooManyRcpts {
		// A recipient overshoot is the client's cue to send the rest in
		// another transaction (RFC 5321 §4.5.3.1.10), not an error: a
		// pipelining client meets it many times in one group.
		return
	}
	ss.errors++
	if ss.errors >= ss.srv.cfg.MaxErrors {
		tm := replyTooManyErrors(ss.srv.cfg.Hostname)
		maillog.Reject(ss.log, ss.info.ID, "CONNECT", tm)
		ss.reply(tm)
		ss.done = true
	}
}

// hangUp sends r and ends the session.
func (ss *session) hangUp(stage string, r smtp.Reply) {
	maillog.Reject(ss.log, ss.info.ID, stage, r)
	ss.reply(r)
	ss.done = true
}

// refused notes a policy refusal's reason for the reject line and returns
// its reply, the only part the client sees.
func (ss *session) refused(r *Refusal) smtp.Reply {
	ss.reason = r.Reason
	return r.Reply
}

// command runs one command line.
func (ss *session) command(line string) {
	ss.reason = ""
	cmd, err := smtp.ParseCommand(line)
	if err != nil {
		ss.counts.Record("unknown", false)
		ss.replyCmd("", replyUnknown())
		return
	}
	// Commands sent ahead where RFC 2920 §3.1 forbids it: after EHLO, HELO
	// or DATA (which must end a group), or at all when PIPELINING was not
	// offered. Bytes already buffered now arrived with this command.
	ahead := ss.r.Buffered() > 0
	if ahead && ss.srv.cfg.ForbidUnauthPipelining && ss.info.User == "" && cmd.Verb != "QUIT" && cmd.Verb != "BDAT" {
		offered := ss.info.ESMTP && ss.srv.ext.pipelining
		if !offered || cmd.Verb == "EHLO" || cmd.Verb == "HELO" || cmd.Verb == "DATA" {
			ss.counts.Record(cmd.Verb, false)
			ss.hangUp("PIPELINING", replyPipelining())
			return
		}
	}
	if cmd.Verb != "BDAT" && ss.tlsRequired(cmd.Verb) { // BDAT's chunk is read first
		ss.counts.Record(cmd.Verb, false)
		ss.replyCmd(cmd.Verb, replyTLSRequired())
		return
	}
	var r smtp.Reply
	switch cmd.Verb {
	case "EHLO":
		r = ss.cmdHello(cmd.Arg, true)
	case "HELO":
		r = ss.cmdHello(cmd.Arg, false)
	case "MAIL":
		r = ss.cmdMail(line, cmd.Arg)
	case "RCPT":
		r = ss.cmdRcpt(line, cmd.Arg)
	case "DATA":
		r = ss.cmdData(cmd.Arg)
	case "BDAT":
		r = ss.cmdBDAT(cmd.Arg)
	case "RSET":
		r = replySyntax("RSET")
		if cmd.Arg == "" {
			ss.resetTransaction()
			r = replyOK()
		}
	case "NOOP":
		r = replyOK() // RFC 5321 §4.1.1.9: an argument is ignored
	case "QUIT":
		r = replySyntax("QUIT")
		if cmd.Arg == "" {
			r = replyBye()
			ss.done = true
			ss.srv.freeSlot(ss.conn)
		}
	case "VRFY":
		r = replySyntax("VRFY address")
		if cmd.Arg != "" {
			r = replyVRFY()
		}
	case "HELP":
		r = replyHelp()
	case "STARTTLS":
		r = ss.cmdStartTLS(cmd.Arg)
		if r.Code == smtp.CodeReady {
			ss.counts.Record(cmd.Verb, true)
			ss.reply(r)
			ss.upgrade()
			return
		}
	case "AUTH":
		r = ss.cmdAuth(cmd.Arg)
	case "EXPN":
		r = replyNotImpl()
	default:
		ss.counts.Record("unknown", false)
		ss.replyCmd("", replyUnknown())
		return
	}
	if r.Code == 0 { // the command already replied and ended the session
		ss.counts.Record(cmd.Verb, false)
		return
	}
	ss.counts.Record(cmd.Verb, r.Positive())
	ss.replyCmd(cmd.Verb, r)
}

// cmdHello runs EHLO (extended) or HELO (RFC 5321 §4.1.1.1).
func (ss *session) cmdHello(arg string, extended bool) smtp.Reply {
	cfg := &ss.srv.cfg
	if extended && cfg.NoESMTP {
		return replyNotImpl()
	}
	name := trimSpace(arg)
	if name == "" {
		if extended {
			return replySyntax("EHLO hostname")
		}
		return replySyntax("HELO hostname")
	}
	// EHLO and HELO reset the transaction like RSET (RFC 5321 §4.1.4).
	ss.resetTransaction()
	ss.info.Helo = name
	ss.info.ESMTP = extended
	if !extended {
		return smtp.NewReply(smtp.CodeOK, "", cfg.Hostname)
	}
	lines := make([]string, 0, 1+len(ss.srv.ext.keywords))
	lines = append(lines, cfg.Hostname)
	for _, k := range ss.srv.ext.keywords {
		if k == KwRequireTLS && !ss.info.TLS {
			continue // RFC 8689 §4.1: only offered after STARTTLS
		}
		lines = append(lines, k)
	}
	if ss.startTLSOffered() {
		lines = append(lines, KwStartTLS)
	}
	if ss.authOffered() {
		lines = append(lines, authKeyword)
	}
	return smtp.NewReply(smtp.CodeOK, "", lines...)
}

// resetTransaction abandons the current transaction, if any.
func (ss *session) resetTransaction() {
	if ss.bdat != nil {
		ss.bdat.abort()
		ss.bdat = nil
	}
	ss.conn.setReadLimit(time.Time{}) // the transfer, if any, is over
	ss.env = nil
	ss.tx = nil
}

// trimSpace removes leading and trailing spaces and tabs.
func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// protocol returns the "with" keyword for the Received field (RFC 3848,
// RFC 6531 §3.7.3).
func (ss *session) protocol(utf8 bool) string {
	p := "SMTP"
	if ss.info.ESMTP {
		p = "ESMTP"
	}
	if utf8 {
		p = "UTF8SMTP"
	}
	if ss.info.TLS {
		p += "S"
	}
	if ss.info.User != "" {
		p += "A"
	}
	return p
}

// putContext returns the context for Store.Put.
func (ss *session) putContext() context.Context {
	return context.WithValue(ss.srv.ctx, txKey{}, ss.tx)
}
