package smtp

import (
	"errors"
	"fmt"
)

// Named replies that Ferry's server sends. Texts are generic (DESIGN §7:
// clients see generic text; logs get the detail). Each function returns a
// fresh Reply, so callers may change it.

// ReplyGreeting is the 220 greeting (RFC 5321 §4.2, §3.1).
func ReplyGreeting(hostname string) Reply {
	return NewReply(CodeReady, "", hostname+" ESMTP Ferry")
}

// ReplyClosing is the 221 answer to QUIT (RFC 5321 §4.1.1.10).
func ReplyClosing() Reply { return NewReply(CodeClosing, EnhOK, "Bye") }

// ReplyOK is a plain 250 2.0.0 Ok, e.g. for NOOP and RSET (RFC 5321 §4.1.1.5, §4.1.1.9).
func ReplyOK() Reply { return NewReply(CodeOK, EnhOK, "Ok") }

// ReplySenderOK accepts MAIL FROM (250 2.1.0, RFC 3463 §3.2).
func ReplySenderOK() Reply { return NewReply(CodeOK, EnhSenderOK, "Ok") }

// ReplyRecipientOK accepts RCPT TO (250 2.1.5, RFC 3463 §3.2).
func ReplyRecipientOK() Reply { return NewReply(CodeOK, EnhRecipientOK, "Ok") }

// ReplyQueued accepts a message once it is durable (250 2.0.0, DESIGN §2).
func ReplyQueued(id string) Reply {
	return NewReply(CodeOK, EnhOK, "Ok: queued as "+id)
}

// ReplyStartData is the 354 go-ahead after DATA (RFC 5321 §4.1.1.4).
func ReplyStartData() Reply {
	return NewReply(CodeStartMailInput, "", "End data with <CR><LF>.<CR><LF>")
}

// ReplyCannotVerify answers VRFY without verifying (252 2.0.0, RFC 5321 §3.5.3, §7.3).
func ReplyCannotVerify() Reply {
	return NewReply(CodeCannotVerify, EnhOK, "Cannot VRFY user, but will accept message and attempt delivery")
}

// ReplyUnknownCommand answers an unrecognized command (500 5.5.2, RFC 5321 §4.2.4).
func ReplyUnknownCommand() Reply {
	return NewReply(CodeSyntaxError, EnhSyntax, "Error: command not recognized")
}

// ReplyLineTooLong answers a command line over 512 octets (500 5.5.2, RFC 5321 §4.5.3.1.4).
func ReplyLineTooLong() Reply {
	return NewReply(CodeSyntaxError, EnhSyntax, "Error: line too long")
}

// ReplyNotImplemented answers a known command Ferry does not offer here (502 5.5.1, RFC 5321 §4.2.4).
func ReplyNotImplemented() Reply {
	return NewReply(CodeNotImplemented, EnhBadSequence, "Error: command not implemented")
}

// ReplySyntax answers a malformed argument (501 5.5.4, RFC 5321 §4.2.2). A
// *SyntaxError's Msg makes a good text.
func ReplySyntax(text string) Reply {
	return NewReply(CodeParamSyntaxError, EnhInvalidParams, "Syntax error: "+text)
}

// ReplyBadSequence answers a command out of order (503 5.5.1, RFC 5321 §4.1.4).
func ReplyBadSequence(text string) Reply {
	return NewReply(CodeBadSequence, EnhBadSequence, "Error: "+text)
}

// ReplyParamNotRecognized refuses a MAIL or RCPT parameter of an extension
// not offered here (555 5.5.4, RFC 5321 §4.1.1.11).
func ReplyParamNotRecognized(keyword string) Reply {
	return NewReply(CodeParamsNotRecognized, EnhInvalidParams,
		"Error: parameter "+keyword+" not recognized or not implemented")
}

// ReplyNonASCIIAddress refuses a UTF-8 path without SMTPUTF8 (553 5.6.7, RFC 6531 §3.6.1).
func ReplyNonASCIIAddress() Reply {
	return NewReply(CodeMailboxNameInvalid, EnhNonASCIIAddress,
		"Error: non-ASCII address requires SMTPUTF8")
}

// ReplyTooBig refuses a message over the size limit (552 5.3.4, RFC 1870 §6).
func ReplyTooBig() Reply {
	return NewReply(CodeExceededStorage, EnhTooBigForSystem, "Error: message too big")
}

// ReplyTooManyRecipients refuses a recipient over the limit (452 4.5.3, RFC 5321 §4.5.3.1.10).
func ReplyTooManyRecipients() Reply {
	return NewReply(CodeInsufficientStorage, EnhTooManyRcpts, "Error: too many recipients")
}

// ReplyLoop refuses a message with too many Received fields (554 5.4.6, RFC 5321 §6.3).
func ReplyLoop() Reply {
	return NewReply(CodeTransactionFailed, EnhLoop, "Error: too many hops, mail loop")
}

// ReplyBareNewline refuses content with a bare CR or LF under the reject
// policy (550 5.5.2, as Postfix's smtpd_forbid_bare_newline does; RFC 5321 §2.3.8).
func ReplyBareNewline() Reply {
	return NewReply(CodeMailboxUnavailable, EnhSyntax, "Error: bare <CR> or <LF> received")
}

// ReplyNoValidRecipients answers DATA or BDAT without an accepted recipient (554 5.5.1, RFC 5321 §3.3).
func ReplyNoValidRecipients() Reply {
	return NewReply(CodeTransactionFailed, EnhBadSequence, "Error: no valid recipients")
}

// ReplyStoreFailed answers when the message could not be stored (451 4.3.0, DESIGN §2).
func ReplyStoreFailed() Reply {
	return NewReply(CodeLocalError, EnhMailSystem, "Error: queue file write error")
}

// ReplyStoreFull answers when the spool is out of space (452 4.3.1, RFC 3463 §3.4).
func ReplyStoreFull() Reply {
	return NewReply(CodeInsufficientStorage, EnhSystemFull, "Error: insufficient system storage")
}

// ReplyTimeout closes a session that went idle (421 4.4.2, RFC 5321 §4.5.3.2).
func ReplyTimeout(hostname string) Reply {
	return NewReply(CodeServiceNotAvailable, EnhBadConnection, hostname+" Error: timeout exceeded")
}

// ReplyTooManyConnections refuses a connection over a limit (421 4.7.0, RFC 5321 §3.8).
func ReplyTooManyConnections(hostname string) Reply {
	return NewReply(CodeServiceNotAvailable, EnhSecurity, hostname+" Error: too many connections")
}

// ReplyTooManyErrors closes a session after too many errors (421 4.7.0).
func ReplyTooManyErrors(hostname string) Reply {
	return NewReply(CodeServiceNotAvailable, EnhSecurity, hostname+" Error: too many errors")
}

// ReplyShuttingDown closes a session because the server stops (421 4.3.2, RFC 5321 §3.8).
func ReplyShuttingDown(hostname string) Reply {
	return NewReply(CodeServiceNotAvailable, EnhNotAccepting, hostname+" Service shutting down")
}

// ReplyAccessDenied refuses relaying or a client (554 5.7.1, RFC 5321 §3.6.2).
func ReplyAccessDenied(text string) Reply {
	return NewReply(CodeTransactionFailed, EnhNotAuthorized, "Error: "+text)
}

// ReplyHelp answers HELP (214 2.0.0, RFC 5321 §4.1.1.8).
func ReplyHelp() Reply {
	return NewReply(CodeHelp, EnhOK, "See RFC 5321")
}

// ReplyFromError returns the reply for a DATA or BDAT reader failure: 552
// 5.3.4 for ErrTooLarge, 550 5.5.2 for ErrBareNewline; ok is false for any
// other error (an I/O failure, after which the session ends).
func ReplyFromError(err error) (r Reply, ok bool) {
	switch {
	case err == nil:
		return Reply{}, false
	case errors.Is(err, ErrTooLarge):
		return ReplyTooBig(), true
	case errors.Is(err, ErrBareNewline):
		return ReplyBareNewline(), true
	}
	return Reply{}, false
}

// Replyf returns a reply with the given code, enhanced code and a
// formatted text line.
func Replyf(code int, enhanced EnhancedCode, format string, args ...any) Reply {
	return NewReply(code, enhanced, fmt.Sprintf(format, args...))
}
