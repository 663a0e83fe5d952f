package deliver

import (
	"errors"
	"io"

	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Signer adds authentication header fields (a DKIM-Signature, an ARC set)
// to a message after the transfer plan and any conversion, over the exact
// octets sent: RFC 6376 §5.3 asks signers to convert before signing, and
// Ferry converts per hop, so this is the one place a signature that
// survives can be made.
type Signer interface {
	// Sign returns the header fields to prepend to the content that
	// open returns (each call reads it from its start).
	Sign(req SignRequest, open func() io.Reader) (SignResult, error)
}

// SignRequest is what a Signer knows about one transfer.
type SignRequest struct {
	// Env is the message's envelope, with the results at receipt.
	Env *smtp.Envelope
	// Policy is the route's policy (DKIMSigned, DKIMKey).
	Policy route.Policy
	// Signed says the message carried a DKIM-Signature as stored.
	Signed bool
	// Converted says the conversion changed the content.
	Converted bool
}

// SignResult is what a Signer did.
type SignResult struct {
	// Fields are the header fields to prepend, each ending in CRLF; empty
	// for none.
	Fields string
	// Remove are raw header fields of the content to leave out (each
	// once): Ferry's own earlier signature by the key it signs with now,
	// which the conversion broke. The new fields were made over the
	// content without them.
	Remove []string
	// Summary says what was done in a few words, for the log, e.g.
	// "DKIM-signed d=example.org s=s1; ARC set i=1 cv=none".
	Summary string
}

// ReplySigningFailed returns the reply for this case: the message could not be signed (a key
// problem); it is retried rather than sent unsigned (RFC 3463 X.3.0).
func ReplySigningFailed() smtp.Reply {
	return smtp.NewReply(451, smtp.EnhMailSystem, "Local error signing the message")
}

// signError marks a failure of the Signer.
type signError struct{ err error }

func (e *signError) Error() string { return "deliver: signing: " + e.err.Error() }
func (e *signError) Unwrap() error { return e.err }

// signFunc signs the content read from open; changed says the conversion
// changed it.
type signFunc func(open func() io.Reader, changed bool) (SignResult, error)

// isSignError reports whether err is a Signer failure.
func isSignError(err error) bool {
	var se *signError
	return errors.As(err, &se)
}
