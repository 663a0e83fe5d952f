package downgrade

import (
	"errors"
	"fmt"
)

// ErrMalformed reports input that cannot be converted without loss: the
// caller should fail the message with 554 5.6.5 (Conversion failed,
// RFC 3463 §3.7).
var ErrMalformed = errors.New("malformed message cannot be converted losslessly")

// ErrNeedsSMTPUTF8 reports 8-bit text in a header where no 7-bit form
// exists (an addr-spec, or another structured field): the message can only
// travel with SMTPUTF8 (RFC 6531). The caller should fail it with 5.6.9
// (UTF-8 header cannot be transferred, RFC 6531 §3.7.5), or 5.6.7 when the
// envelope addresses are the problem.
var ErrNeedsSMTPUTF8 = errors.New("8-bit header text needs SMTPUTF8")

// Error is the error Convert returns for input it will not convert. Kind is
// ErrMalformed or ErrNeedsSMTPUTF8, so errors.Is works on an *Error.
type Error struct {
	Kind   error  // ErrMalformed or ErrNeedsSMTPUTF8
	Part   string // MIME part path ("" for the top-level header)
	Reason string // what is wrong, for logs
}

// Error returns a one-line description of e.
func (e *Error) Error() string {
	where := "top-level"
	if e.Part != "" {
		where = "part " + e.Part
	}
	return fmt.Sprintf("downgrade: %s: %s: %v", where, e.Reason, e.Kind)
}

// Unwrap returns e's kind, one of the sentinel errors.
func (e *Error) Unwrap() error { return e.Kind }

// Enhanced returns the RFC 3463 enhanced status code for e: "5.6.5" for
// malformed input, "5.6.9" for text that needs SMTPUTF8.
func (e *Error) Enhanced() string {
	if errors.Is(e.Kind, ErrNeedsSMTPUTF8) {
		return "5.6.9"
	}
	return "5.6.5"
}

func malformed(part, format string, args ...any) error {
	return &Error{Kind: ErrMalformed, Part: part, Reason: fmt.Sprintf(format, args...)}
}

func needsUTF8(part, format string, args ...any) error {
	return &Error{Kind: ErrNeedsSMTPUTF8, Part: part, Reason: fmt.Sprintf(format, args...)}
}
