package smtpd

import "github.com/ferrymta/ferry/internal/smtp"

// The server's replies. Codes follow RFC 5321 §4.2.3 and the enhanced codes
// RFC 3463/5248; texts follow Postfix where clients may know them.

func reply(code int, enhanced smtp.EnhancedCode, text string) smtp.Reply {
	return smtp.NewReply(code, enhanced, text)
}

func replyOK() smtp.Reply          { return reply(250, "2.0.0", "Ok") }
func replyMailOK() smtp.Reply      { return reply(250, "2.1.0", "Ok") }
func replyRcptOK() smtp.Reply      { return reply(250, "2.1.5", "Ok") }
func replyBye() smtp.Reply         { return reply(221, "2.0.0", "Bye") }
func replyStartData() smtp.Reply   { return reply(354, "", "End data with <CR><LF>.<CR><LF>") }
func replyUnknown() smtp.Reply     { return reply(500, "5.5.2", "Error: command not recognized") }
func replyLineTooLong() smtp.Reply { return reply(500, "5.5.2", "Error: line too long") }
func replyNotImpl() smtp.Reply     { return reply(502, "5.5.1", "Error: command not implemented") }

// replyVRFY is RFC 5321 §3.5.3's answer for a server that does not verify.
func replyVRFY() smtp.Reply {
	return reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery")
}

func replyHelp() smtp.Reply {
	return reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP; see RFC 5321")
}

func replySyntax(usage string) smtp.Reply  { return reply(501, "5.5.4", "Syntax: "+usage) }
func replyBadParam(text string) smtp.Reply { return reply(501, "5.5.4", text) }

// replySequence is 503 5.5.1 (RFC 5321 §4.3.2 "bad sequence of commands").
func replySequence(text string) smtp.Reply { return reply(503, "5.5.1", "Error: "+text) }

// replyUnsupportedParam is 555 for a MAIL or RCPT parameter not recognised
// or of an extension not offered (RFC 5321 §4.1.1.11, §4.2.3).
func replyUnsupportedParam(key string) smtp.Reply {
	return reply(555, "5.5.4", "Unsupported option: "+key)
}

func replyTooBig() smtp.Reply {
	return reply(552, "5.3.4", "Error: message size exceeds fixed limit")
}

func replyTooManyRcpts() smtp.Reply { return reply(452, "4.5.3", "Error: too many recipients") }

// replyNeedSMTPUTF8 is RFC 6531 §3.7.4.1's answer to a UTF-8 address
// without the SMTPUTF8 parameter.
func replyNeedSMTPUTF8() smtp.Reply {
	return reply(553, "5.6.7", "Error: SMTPUTF8 required for a non-ASCII address")
}

func replyLoop() smtp.Reply {
	return reply(554, "5.4.6", "Error: too many \"Received\" header fields (mail loop)")
}

func replyBareNewline() smtp.Reply {
	return reply(550, "5.5.2", "Error: bare <CR> or <LF> received")
}

func replyStorageFull() smtp.Reply { return reply(452, "4.3.1", "Error: insufficient system storage") }
func replyStoreFailed() smtp.Reply { return reply(451, "4.3.0", "Error: queue file write error") }

func replyQueued(id string) smtp.Reply { return reply(250, "2.0.0", "Ok: queued as "+id) }

func replyPipelining() smtp.Reply {
	return reply(554, "5.5.0", "Error: improper use of SMTP command pipelining")
}

func replyTimeout(host string) smtp.Reply {
	return reply(421, "4.4.2", host+" Error: timeout exceeded")
}

func replyTooManyErrors(host string) smtp.Reply {
	return reply(421, "4.7.0", host+" Error: too many errors")
}

func replyTooManyConns(host string) smtp.Reply {
	return reply(421, "4.7.0", host+" Error: too many connections")
}

func replyShutdown(host string) smtp.Reply {
	return reply(421, "4.3.2", host+" Service shutting down, closing transmission channel")
}

// replyPregreet refuses a client that sent data before the greeting
// (RFC 5321 §3.1, §4.3.1: 554 in place of the greeting).
func replyPregreet(host string) smtp.Reply {
	return reply(554, "5.5.1", host+" Error: protocol error: data sent before the greeting")
}
