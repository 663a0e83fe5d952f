package dsn

import (
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Kind is the kind of a report; it is also the Action field value of every
// recipient the report covers (RFC 3464 §2.3.3).
type Kind uint8

// Report kinds.
const (
	// Failed: the message could not be delivered to the recipients and
	// will not be tried again.
	Failed Kind = iota + 1
	// Delayed: delivery has not succeeded yet and is still being retried.
	Delayed
	// Delivered: the message was delivered to the recipients.
	Delivered
	// Relayed: the message was passed on to a next hop that cannot send
	// DSNs itself (RFC 3461 §5.2.2), so no further report will come.
	Relayed
)

// String returns the kind as an RFC 3464 action-value: "failed", "delayed",
// "delivered" or "relayed".
func (k Kind) String() string {
	switch k {
	case Failed:
		return "failed"
	case Delayed:
		return "delayed"
	case Delivered:
		return "delivered"
	case Relayed:
		return "relayed"
	}
	return "unknown"
}

// valid reports whether k is one of the defined kinds.
func (k Kind) valid() bool { return k >= Failed && k <= Relayed }

// subject returns the Subject of a report of kind k.
func (k Kind) subject() string {
	switch k {
	case Failed:
		return "Undelivered Mail Returned to Sender"
	case Delayed:
		return "Delayed Mail (still being retried)"
	case Delivered:
		return "Successful Mail Delivery Report"
	}
	return "Relayed Mail Report"
}

// DefaultMaxReturnSize is the largest original message a failure report
// returns in full; a larger one is returned as its header only.
const DefaultMaxReturnSize = 100 << 10

// Report describes one delivery status notification about one message.
type Report struct {
	Kind Kind
	// ReportingMTA is the host name of this MTA, used in Reporting-MTA
	// and in the From address (MAILER-DAEMON@ReportingMTA).
	ReportingMTA string
	// Env is the original message's envelope: its reverse path (the
	// report's addressee unless To is set), RET, ENVID, SMTPUTF8, arrival
	// time and the recipients' ORCPT parameters.
	Env *smtp.Envelope
	// To is the report's addressee; the zero path means Env.From. The
	// Notifier sets it to the postmaster for copies of double bounces.
	To smtp.Path
	// Rcpts are the recipients the report covers, all of Kind.
	Rcpts []Recipient
	// Date is when the report is made (Date field).
	Date time.Time
	// MessageID is the report's Message-ID without angle brackets,
	// "left@right".
	MessageID string
	// MaxReturnSize caps the size of an original message returned in
	// full; zero means DefaultMaxReturnSize, a negative value returns
	// headers only.
	MaxReturnSize int64
}

// Recipient is one recipient a report covers.
type Recipient struct {
	// Index is the recipient's index in Env.Rcpts, which supplies its
	// ORCPT (Original-Recipient); -1 when it has none.
	Index int
	// Addr is the recipient address (Final-Recipient).
	Addr smtp.Path
	// Reply is the next hop's last reply (or the reply Ferry recorded
	// for a local decision such as a refused conversion); Code 0 means
	// none.
	Reply smtp.Reply
	// RemoteMTA is the next hop that gave Reply, as the queue records it
	// ("host[ip]:port") or as a plain host name; empty when none.
	RemoteMTA string
	// LastAttempt is when the last delivery attempt ended; zero if none.
	LastAttempt time.Time
	// WillRetryUntil is, for a delayed recipient, when retrying stops.
	WillRetryUntil time.Time
	// Expired is set when the recipient failed because the message
	// outlived the queue lifetime.
	Expired bool
}

// Status returns the recipient's RFC 3464 Status for a report of kind k: the
// enhanced code of the reply when it has a valid one, otherwise one mapped
// from the basic reply code (RFC 3463), with the class made to agree with
// the action (2 for delivered and relayed, 4 for delayed, 4 or 5 for
// failed; RFC 3464 §2.3.4).
func (r Recipient) Status(k Kind) smtp.EnhancedCode {
	code := r.Reply.Enhanced
	if !code.Valid() {
		code = mapBasicCode(r.Reply.Code)
	}
	switch k {
	case Delivered, Relayed:
		if code.Class() != 2 {
			code = smtp.EnhOK
		}
	case Delayed:
		if code.Class() != 4 {
			code = code.WithClass(4)
		}
	case Failed:
		if r.Expired {
			// A TLS failure that outlived the message (a
			// tls=required route whose hop never offered TLS or
			// failed the handshake) becomes permanent: 4.7.10 →
			// 5.7.10, 4.7.5 → 5.7.5 (RFC 5248); a permanent code
			// the queue chose stays. Anything else is X.4.7,
			// delivery time expired (RFC 3463 §3.5), kept in
			// class 4 as the queue records it.
			switch {
			case code == "4.7.10" || code == "4.7.5":
				code = code.WithClass(5)
			case r.Reply.Enhanced.Class() != 5:
				code = smtp.EnhExpired
			}
		} else if code.Class() != 4 && code.Class() != 5 {
			code = smtp.EnhOther
		}
	}
	return code
}

// mapBasicCode maps a basic reply code to the enhanced code it implies
// (RFC 3463 §3, RFC 5321 §4.2.2): x.0.0 unless the code says more.
func mapBasicCode(code int) smtp.EnhancedCode {
	// Only codes with one meaning are refined: 550, 552 and 553, for
	// instance, serve for unknown users, policy refusals and full
	// mailboxes alike, and a wrong guess would mislead the sender.
	switch code {
	case 421:
		return "4.3.2" // service not available: system not accepting messages
	case 454:
		return "4.7.0" // TLS not available (RFC 3207 §4)
	case 500:
		return "5.5.2" // syntax error, command unrecognised
	case 501, 504, 555:
		return "5.5.4" // invalid command arguments or parameters
	case 502, 503:
		return "5.5.1" // invalid command
	case 530:
		return "5.7.0" // authentication required (RFC 4954 §6)
	case 535:
		return "5.7.8" // authentication credentials invalid
	case 551:
		return "5.1.6" // user not local: mailbox has moved
	}
	switch {
	case code >= 200 && code < 300:
		return smtp.EnhOK
	case code >= 400 && code < 500:
		return "4.0.0"
	}
	return smtp.EnhOther
}

// remoteHost returns the host name of a queue RemoteMTA "host[ip]:port", or
// the IP address when no name is known.
func remoteHost(mta string) string {
	if i := strings.IndexByte(mta, '['); i > 0 {
		return mta[:i]
	} else if i == 0 {
		if j := strings.IndexByte(mta, ']'); j > 0 {
			return mta[1:j]
		}
	}
	if h, _, ok := strings.Cut(mta, ":"); ok && !strings.Contains(mta, "]") && strings.Count(mta, ":") == 1 {
		return h
	}
	return mta
}
