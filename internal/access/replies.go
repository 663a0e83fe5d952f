package access

import "github.com/ferrymta/ferry/internal/smtp"

// The replies a Decision carries. They are functions, not variables, so no
// caller can change a shared Reply's Lines. Clients see generic text; the
// Decision's Reason holds the detail for the log (DESIGN.md §7).

// ReplyRelayDenied is the answer to RCPT for a recipient the client may not
// relay to: 554 5.7.1, as Postfix, Exim and Sendmail answer (RFC 5321 §3.6.2
// and §7.1: relaying must be restricted; RFC 3463 §3.8: X.7.1 delivery not
// authorized).
func ReplyRelayDenied() smtp.Reply {
	return smtp.NewReply(smtp.CodeTransactionFailed, smtp.EnhNotAuthorized, "Relay access denied")
}

// ReplyBadRecipient is the answer to RCPT for a forward path that cannot name
// a deliverable mailbox (null path, missing domain, a domain that is not a
// valid name, an unsupported address literal): 501 5.1.3 (RFC 5321
// §4.2.2, RFC 3463 §3.2 X.1.3 bad destination mailbox address syntax).
func ReplyBadRecipient() smtp.Reply {
	return smtp.NewReply(smtp.CodeParamSyntaxError, smtp.EnhBadDestSyntax, "Bad recipient address syntax")
}

// ReplySenderDenied is the answer to MAIL when a sender rule does not allow
// the reverse path's domain for this client: 553 5.7.1, as Postfix's
// reject_sender_login_mismatch (RFC 5321 §4.2.3 553: mailbox name not
// allowed; RFC 3463 X.7.1).
func ReplySenderDenied() smtp.Reply {
	return smtp.NewReply(smtp.CodeMailboxNameInvalid, smtp.EnhNotAuthorized, "Sender address rejected: not permitted for this client")
}

// ReplyRateLimited is the answer when a client or user is over its message
// rate: 450 4.7.1, a transient refusal the client retries later (RFC 5321
// §4.2.2 450; RFC 3463 X.7.1).
func ReplyRateLimited() smtp.Reply {
	return smtp.NewReply(smtp.CodeMailboxBusy, "4.7.1", "Message rate limit exceeded, try again later")
}
