package smtp

import (
	"time"

	"github.com/ferrymta/ferry/internal/contentscan"
)

// BodyType is the body type a client declared with MAIL FROM's BODY=
// parameter (RFC 6152 §2, RFC 3030 §3).
type BodyType string

// Body types as they appear in BODY=.
const (
	Body7Bit       BodyType = "7BIT"
	Body8BitMIME   BodyType = "8BITMIME"
	BodyBinaryMIME BodyType = "BINARYMIME"
)

// DSNReturn is the RET= parameter of MAIL FROM (RFC 3461 §4.3).
type DSNReturn string

// DSN RET values; the empty value means the sender gave none.
const (
	ReturnNone    DSNReturn = ""
	ReturnFull    DSNReturn = "FULL"
	ReturnHeaders DSNReturn = "HDRS"
)

// Notify is the set of NOTIFY= conditions of one recipient (RFC 3461 §4.1).
// The zero value means the sender gave no NOTIFY parameter.
type Notify uint8

// Notify flags. NotifyNever excludes all others.
const (
	NotifyNever Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// Recipient is one RCPT TO of an envelope with its DSN parameters.
type Recipient struct {
	// Addr is the forward path.
	Addr Path
	// Notify holds the NOTIFY= conditions; zero when none were given.
	Notify Notify
	// ORcpt is the ORCPT= parameter decoded from xtext, as
	// "addr-type;address" (RFC 3461 §4.2), or empty.
	ORcpt string
}

// Envelope is the SMTP envelope of one message: what MAIL FROM and RCPT TO
// said, and who said it.
type Envelope struct {
	// ID is the queue ID, assigned before the message is stored.
	ID string
	// From is the reverse path; the null path for bounces.
	From Path
	// Body is the declared BODY= type; empty means none was declared (7BIT).
	Body BodyType
	// SMTPUTF8 is set when MAIL FROM carried SMTPUTF8 (RFC 6531 §3.4).
	SMTPUTF8 bool
	// RequireTLS is set when MAIL FROM carried REQUIRETLS (RFC 8689).
	RequireTLS bool
	// TLSOptional is set when the message's header said "TLS-Required: No"
	// at receipt (RFC 8689 §5): the sender asks that delivery ignore DANE
	// and MTA-STS failures. REQUIRETLS overrides it.
	TLSOptional bool
	// Size is the SIZE= the client declared, or 0.
	Size int64
	// Ret and EnvID are the RET= and ENVID= DSN parameters (RFC 3461 §4.3,
	// §4.4); EnvID is decoded from xtext.
	Ret   DSNReturn
	EnvID string
	// Auth is the AUTH= parameter of MAIL FROM (RFC 4954 §5), decoded, or "".
	Auth string
	// Rcpts are the accepted recipients in the order they were given.
	Rcpts []Recipient
	// Client describes the session the message arrived on.
	Client ClientInfo
	// Arrival is when the message was accepted.
	Arrival time.Time
	// AuthResults are the DKIM and ARC results found at receipt; nil when
	// the message was not verified.
	AuthResults *AuthResults
	// ContentScan is what a scan of the stored content (its 8-bit and
	// binary octets, long lines, 8-bit header text, DKIM signature) found
	// when the message was queued, so delivery need not read the content
	// again to plan each attempt. Nil means no scan was kept (a message
	// stored by an earlier version): delivery scans the content itself.
	ContentScan *contentscan.Needs
}

// ClientInfo describes the SMTP client that submitted a message.
type ClientInfo struct {
	// Addr is the client's IP address and port as "ip:port".
	Addr string
	// Helo is the name the client gave in EHLO or HELO.
	Helo string
	// User is the authenticated user, if any.
	User string
	// TLS is set when the session ran over TLS.
	TLS bool
	// Protocol is "SMTP", "ESMTP", "ESMTPS", "ESMTPA" or "ESMTPSA"
	// (RFC 3848) as written in the Received field.
	Protocol string
}
