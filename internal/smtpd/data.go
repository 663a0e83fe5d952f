package smtpd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/smtp"
)

// errLoop is returned by the content reader when the message has more
// Received fields than allowed.
var errLoop = errors.New("smtpd: too many Received header fields")

// cmdData runs DATA (RFC 5321 §4.1.1.4): 354, then the content is streamed
// into the store, then the final reply. It returns that reply, or the zero
// Reply when the session ended.
func (ss *session) cmdData(arg string) smtp.Reply {
	if ss.env == nil {
		return replySequence("need MAIL command")
	}
	if ss.bdat != nil {
		return replySequence("DATA after BDAT")
	}
	if len(ss.env.Rcpts) == 0 {
		return replySequence("need RCPT command")
	}
	if arg != "" {
		return replySyntax("DATA")
	}
	if ss.env.Body == smtp.BodyBinaryMIME {
		// RFC 3030 §3: BINARYMIME content must come with BDAT.
		return replySequence("BDAT required for BODY=BINARYMIME")
	}
	if r := ss.srv.policy.Data(ss.info, ss.env); r != nil {
		ss.resetTransaction()
		return ss.refused(r)
	}
	ss.reply(replyStartData())
	if err := ss.w.Flush(); err != nil {
		ss.done = true
		return smtp.Reply{}
	}
	cfg := &ss.srv.cfg
	ss.conn.setReadTimeout(cfg.Timeouts.Data, false)
	// The whole transfer is bounded too, not only each read (slowloris);
	// resetTransaction lifts the bound.
	ss.conn.setReadLimit(time.Now().Add(cfg.Timeouts.DataTotal))
	content := smtp.NewDataReader(ss.r, smtp.DataOptions{MaxSize: cfg.MaxMessageSize, Bare: cfg.BareNewline})
	return ss.store(content)
}

// store streams DATA content into the Store and returns the final reply
// for the transaction, which it ends. When the connection failed while
// reading the content it ends the session (with 421 after a timeout) and
// returns the zero Reply.
func (ss *session) store(content io.Reader) smtp.Reply {
	m := ss.prepareMessage(content)
	m.noteHeader()
	id, err := ss.srv.store.Put(ss.putContext(), m.env, m.body)
	return ss.finishMessage(m, id, err, content)
}

// pendingMessage is a message on its way into the store.
type pendingMessage struct {
	env  *smtp.Envelope
	ld   *loopDetector
	body *trackingReader
	// peek reads the header section ahead (noteHeader).
	peek *headerPeek
	// lines records the content in a full-content transcript; nil
	// otherwise. Content drained after the store gave up is not recorded.
	lines *maillog.ContentLines
}

// prepareMessage completes the envelope (queue ID, arrival, client) and
// builds the body the store reads: the Received field, then content.
func (ss *session) prepareMessage(content io.Reader) *pendingMessage {
	env := ss.env
	env.ID = ss.srv.store.NewID()
	env.Arrival = time.Now()
	env.Client = smtp.ClientInfo{
		Addr:     ss.info.Remote.String(),
		Helo:     ss.info.Helo,
		User:     ss.info.User,
		TLS:      ss.info.TLS,
		Protocol: ss.protocol(env.SMTPUTF8),
	}
	content, lines := ss.transcribeContent(content)
	ld := &loopDetector{r: content, max: ss.srv.cfg.MaxReceived}
	var body io.Reader = ld
	if !ss.srv.cfg.OmitReceived {
		body = io.MultiReader(strings.NewReader(ss.receivedField(env)), ld)
	}
	peek := &headerPeek{r: body}
	return &pendingMessage{env: env, ld: ld, body: &trackingReader{r: peek}, peek: peek, lines: lines}
}

// finishMessage turns the store's result into the final reply and ends the
// transaction; id is the ID Put returned (env.ID when empty). drain, when
// not nil, is read to its end first so the
// session stays in step with the client whatever the store did.
func (ss *session) finishMessage(m *pendingMessage, id string, err error, drain io.Reader) smtp.Reply {
	defer ss.resetTransaction()
	tr := m.body
	if err == nil && tr.err != nil {
		err = tr.err
	}
	if err == nil && !tr.eof {
		// The store returned without reading to the end: a store bug; never
		// acknowledge what may be a truncated message.
		err = errors.New("smtpd: store returned before the end of the content")
	}
	if drain != nil {
		if _, derr := io.Copy(io.Discard, drain); derr != nil && err == nil {
			err = derr
		}
	}
	if m.lines != nil {
		m.lines.Flush()
	}
	ss.tr.Note(fmt.Sprintf("<message content, %d octets stored>", tr.n))
	if ss.conn.readErr != nil {
		// The connection failed mid-content: nothing more can be said in step.
		if ss.conn.timedOut() {
			ss.hangUp("DATA", replyTimeout(ss.srv.cfg.Hostname))
		}
		ss.done = true
		return smtp.Reply{}
	}
	if err == nil {
		if id == "" {
			id = m.env.ID
		}
		maillog.Queued(ss.log, ss.info.ID, id, m.env.From, len(m.env.Rcpts), tr.n, m.env.Body)
		ss.queued = true // the next hello phase starts when this transaction ends
		return replyQueued(id)
	}
	r := storeReply(err, m.ld.exceeded)
	if ss.log != nil {
		ss.log.Warn("not queued", "session", ss.info.ID, "id", m.env.ID, "error", err.Error(), "reply", r.String())
	}
	return r
}

// storeReply maps a failure to store a message to its reply: content errors
// (loop, size, bare newline) first, then a reply the store chose, then a
// full disk (452 4.3.1), else 451 4.3.0.
// Storage failures are always transient (DESIGN.md §2).
func storeReply(err error, loop bool) smtp.Reply {
	switch {
	case loop || errors.Is(err, errLoop):
		return replyLoop()
	case errors.Is(err, smtp.ErrTooLarge):
		return replyTooBig()
	case errors.Is(err, smtp.ErrBareNewline):
		return replyBareNewline()
	}
	if r, ok := replyFromError(err); ok {
		return r
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return replyStorageFull()
	}
	return replyStoreFailed()
}

// receivedField returns the trace field the server prepends (RFC 5321
// §4.4): from the client's EHLO name and IP address, by this host, with the
// protocol (RFC 3848), the queue ID, the recipient when there is only one,
// and the date (RFC 5322 §3.3). Lines are folded and end in CRLF.
func (ss *session) receivedField(env *smtp.Envelope) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(sanitizeTraceWord(ss.info.Helo))
	b.WriteString(" (")
	b.WriteString(addressLiteral(ss.info.Remote))
	b.WriteString(")\r\n\t")
	if ss.info.TLS {
		// Like Postfix: the TLS version and cipher as a comment.
		b.WriteString("(using ")
		b.WriteString(sanitizeTraceWord(ss.info.TLSVersion))
		b.WriteString(" with cipher ")
		b.WriteString(sanitizeTraceWord(ss.info.TLSCipher))
		b.WriteString(")\r\n\t")
	}
	b.WriteString("by ")
	b.WriteString(ss.srv.cfg.Hostname)
	b.WriteString(" (Ferry) with ")
	b.WriteString(env.Client.Protocol)
	b.WriteString(" id ")
	b.WriteString(env.ID)
	if len(env.Rcpts) == 1 {
		b.WriteString("\r\n\tfor ")
		b.WriteString(sanitizeTraceWord(env.Rcpts[0].Addr.String()))
	}
	b.WriteString(";\r\n\t")
	b.WriteString(env.Arrival.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	b.WriteString("\r\n")
	return b.String()
}

// addressLiteral formats the client's IP as an address literal (RFC 5321
// §4.1.3): "[192.0.2.1]" or "[IPv6:2001:db8::1]".
func addressLiteral(a net.Addr) string {
	ip := net.ParseIP(remoteIP(a))
	switch {
	case ip == nil:
		return "[" + sanitizeTraceWord(a.String()) + "]"
	case ip.To4() != nil:
		return "[" + ip.To4().String() + "]"
	}
	return "[IPv6:" + ip.String() + "]"
}

// sanitizeTraceWord keeps a client-given name from breaking the Received
// field: anything but printable ASCII, and parentheses and backslashes
// (which would open or escape a comment), become '?'.
func sanitizeTraceWord(s string) string {
	if s == "" {
		return "unknown"
	}
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c > '~' || c == '(' || c == ')' || c == '\\' || c == ';' {
			b[i] = '?'
		}
	}
	return string(b)
}

// trackingReader records what the store read: octets, the first error and
// whether it reached the end.
type trackingReader struct {
	r   io.Reader
	n   int64
	err error
	eof bool
}

// Read implements io.Reader.
func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		t.eof = true
	case err != nil && t.err == nil:
		t.err = err
	}
	return n, err
}

// loopDetector passes content through and counts Received fields in its
// header section; once there are more than max it fails with errLoop
// (RFC 5321 §6.3: a loop is detected by counting trace fields).
type loopDetector struct {
	r        io.Reader
	max      int
	count    int
	col      int  // octets on the current line so far
	match    bool // the current line still starts like "Received:"
	inBody   bool
	exceeded bool
}

// Read implements io.Reader.
func (d *loopDetector) Read(p []byte) (int, error) {
	if d.exceeded {
		return 0, errLoop
	}
	n, err := d.r.Read(p)
	if !d.inBody {
		d.scan(p[:n])
		if d.exceeded {
			return n, errLoop
		}
	}
	return n, err
}

const receivedName = "received:"

func (d *loopDetector) scan(b []byte) {
	for _, c := range b {
		switch {
		case c == '\n':
			if d.col == 0 {
				d.inBody = true // the empty line ending the header section
				return
			}
			d.col = 0
		case c == '\r' && d.col == 0:
			// the CR of a line ending, or of the empty line
		default:
			if d.col == 0 {
				d.match = true
			}
			if d.col < len(receivedName) && d.match {
				if lower(c) != receivedName[d.col] {
					d.match = false
				} else if d.col == len(receivedName)-1 {
					d.count++
					if d.count > d.max {
						d.exceeded = true
						return
					}
				}
			}
			d.col++
		}
	}
}

// lower returns c with ASCII letters in lower case.
func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
