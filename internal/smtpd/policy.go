package smtpd

import (
	"context"
	"errors"
	"net"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Store receives every accepted message: the intake side of the queue
// contract. The server assigns env.ID from NewID before the body is read,
// and replies 250 only when Put returns nil: Put must return only once the
// message is durable. body is the content with the server's Received field
// prepended (unless Config.OmitReceived); Put must read it to io.EOF and
// must return the reader's error if reading fails. A returned error is
// answered 4xx unless its chain holds a *ReplyError, whose reply is sent
// instead.
type Store = queue.Intake

// SpaceChecker is implemented by a Store that can tell cheaply whether a
// message of a declared size fits now. The server then answers a MAIL
// whose SIZE= cannot fit with 452 4.3.1 (RFC 1870 §6.1), before any
// content is sent, rather than after the whole transfer.
type SpaceChecker interface {
	// HasRoomFor reports whether a message of about size octets can be
	// stored now.
	HasRoomFor(size int64) bool
}

// ReplyError is an error that carries the exact reply the client gets, for
// Store and policy implementations that decide the SMTP outcome.
type ReplyError struct {
	Reply smtp.Reply
}

// Error returns the reply as text.
func (e *ReplyError) Error() string { return "smtpd: " + e.Reply.String() }

// SessionInfo describes the session a policy decision is asked about.
type SessionInfo struct {
	// ID is the session ID used in logs.
	ID string
	// Remote is the client's address.
	Remote net.Addr
	// Helo is the name given in EHLO or HELO; "" before either.
	Helo string
	// ESMTP is set when the session started with EHLO.
	ESMTP bool
	// TLS is set when the session runs over TLS.
	TLS bool
	// TLSVersion and TLSCipher name the negotiated TLS version and cipher
	// suite ("TLSv1.3", "TLS_AES_128_GCM_SHA256") on a TLS session.
	TLSVersion string
	TLSCipher  string
	// User is the authenticated user, or "".
	User string
}

// Policy decides whether to accept a session's steps. Connect returns nil
// to accept or the reply to refuse with; Mail, Rcpt and Data return nil to
// accept or a Refusal, whose reason the server logs and never sends. The
// server calls them after its own syntax and limit checks pass.
type Policy interface {
	// Connect is called for a new connection before the greeting; a non-nil
	// reply is sent instead of the greeting and the connection is closed.
	Connect(remote net.Addr) *smtp.Reply
	// Mail is called for a valid MAIL command.
	Mail(sess SessionInfo, from smtp.Path, params smtp.Params) *Refusal
	// Rcpt is called for a valid RCPT command.
	Rcpt(sess SessionInfo, to smtp.Path, params smtp.Params) *Refusal
	// Data is called at DATA (before the 354) or at the first BDAT of a
	// transaction, with the envelope built so far.
	Data(sess SessionInfo, env *smtp.Envelope) *Refusal
}

// Refusal is a policy's refusal of a command, with the reason for it.
type Refusal struct {
	// Reply is what the client gets.
	Reply smtp.Reply
	// Reason says why, for the log only: the server writes it on the
	// session's reject line as reason= and never sends it to the client,
	// which sees Reply's generic text. Empty: no reason logged.
	Reason string
}

// Refuse returns a Refusal with reply r and no reason, or nil (accept) when
// r is nil: for a policy whose refusals need no reason in the log.
func Refuse(r *smtp.Reply) *Refusal {
	if r == nil {
		return nil
	}
	return &Refusal{Reply: *r}
}

// AcceptAll is a Policy that accepts everything. Relay control comes from
// the access policy that replaces it in production.
type AcceptAll struct{}

// Connect accepts the connection.
func (AcceptAll) Connect(net.Addr) *smtp.Reply { return nil }

// Mail accepts the sender.
func (AcceptAll) Mail(SessionInfo, smtp.Path, smtp.Params) *Refusal { return nil }

// Rcpt accepts the recipient.
func (AcceptAll) Rcpt(SessionInfo, smtp.Path, smtp.Params) *Refusal { return nil }

// Data accepts the message.
func (AcceptAll) Data(SessionInfo, *smtp.Envelope) *Refusal { return nil }

// Transaction is what the server knows about a mail transaction beyond the
// envelope; Put finds it in its context with TransactionFromContext.
type Transaction struct {
	// Session is the session the message arrived on.
	Session SessionInfo
	// MailLine is the MAIL command line exactly as received (without CRLF).
	MailLine string
	// RcptLines are the accepted RCPT command lines as received.
	RcptLines []string
	// Chunked is set when the content came with BDAT rather than DATA.
	Chunked bool
}

type txKey struct{}

// TransactionFromContext returns the transaction of the message being
// stored, when ctx is the context the server passed to Store.Put.
func TransactionFromContext(ctx context.Context) (*Transaction, bool) {
	t, ok := ctx.Value(txKey{}).(*Transaction)
	return t, ok
}

// replyFromError returns the reply carried by a *ReplyError in err's chain.
func replyFromError(err error) (smtp.Reply, bool) {
	var re *ReplyError
	if errors.As(err, &re) {
		return re.Reply, true
	}
	return smtp.Reply{}, false
}
