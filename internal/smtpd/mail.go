package smtpd

import (
	"errors"
	"strconv"
	"strings"

	"github.com/ferrymta/ferry/internal/smtp"
)

// cmdMail runs MAIL FROM (RFC 5321 §4.1.1.2) with its ESMTP parameters.
func (ss *session) cmdMail(line, arg string) smtp.Reply {
	if ss.info.Helo == "" {
		return replySequence("send HELO/EHLO first")
	}
	if ss.env != nil {
		return replySequence("nested MAIL command")
	}
	from, params, err := smtp.ParseMailArg(arg)
	if err != nil {
		return syntaxReply(err, "MAIL FROM:<address>")
	}
	env := &smtp.Envelope{From: from}
	if r, ok := ss.mailParams(env, params); !ok {
		return r
	}
	if !env.SMTPUTF8 && !from.IsASCII() {
		return replyNeedSMTPUTF8()
	}
	if sc, ok := ss.srv.store.(SpaceChecker); ok && env.Size > 0 && !sc.HasRoomFor(env.Size) {
		return replyStorageFull() // RFC 1870 §6.1: temporarily unable to accommodate
	}
	if r := ss.srv.policy.Mail(ss.info, from, params); r != nil {
		return ss.refused(r)
	}
	ss.env = env
	ss.tx = &Transaction{Session: ss.info, MailLine: line}
	return replyMailOK()
}

// mailParams checks MAIL's parameters against the extensions offered and
// records them in env. It returns the reply and false on the first problem.
func (ss *session) mailParams(env *smtp.Envelope, params smtp.Params) (smtp.Reply, bool) {
	ext := &ss.srv.ext
	for _, p := range params {
		offered := ss.info.ESMTP
		switch p.Key {
		case "SIZE": // RFC 1870 §6
			offered = offered && ext.size
		case "BODY": // RFC 6152 §2, RFC 3030 §3
			offered = offered && (ext.eightBit || ext.binary)
		case "SMTPUTF8": // RFC 6531 §3.4
			offered = offered && ext.smtputf8
		case "REQUIRETLS": // RFC 8689 §4.1
			offered = offered && ext.requireTLS && ss.info.TLS
		case "RET", "ENVID": // RFC 3461 §4.3, §4.4
			offered = offered && ext.dsn
		case "AUTH": // RFC 4954 §5
			offered = offered && ss.authOffered()
		default:
			offered = false
		}
		if !offered {
			return replyUnsupportedParam(p.Key), false
		}
		switch p.Key {
		case "SIZE":
			n, err := strconv.ParseInt(p.Value, 10, 64)
			if err != nil || n < 0 || !allDigits(p.Value) {
				return replyBadParam("Bad SIZE parameter syntax"), false
			}
			if max := ss.srv.cfg.MaxMessageSize; max > 0 && n > max {
				return replyTooBig(), false
			}
			env.Size = n
		case "BODY":
			switch b := smtp.BodyType(strings.ToUpper(p.Value)); b {
			case smtp.Body7Bit:
				env.Body = b
			case smtp.Body8BitMIME:
				if !ext.eightBit {
					return replyUnsupportedParam("BODY=8BITMIME"), false
				}
				env.Body = b
			case smtp.BodyBinaryMIME:
				if !ext.binary {
					return replyUnsupportedParam("BODY=BINARYMIME"), false
				}
				env.Body = b
			default:
				return replyBadParam("Bad BODY parameter syntax"), false
			}
		case "SMTPUTF8":
			if p.Value != "" {
				return replyBadParam("Bad SMTPUTF8 parameter syntax"), false
			}
			env.SMTPUTF8 = true
		case "REQUIRETLS":
			if p.Value != "" {
				return replyBadParam("Bad REQUIRETLS parameter syntax"), false
			}
			env.RequireTLS = true
		case "RET":
			switch v := smtp.DSNReturn(strings.ToUpper(p.Value)); v {
			case smtp.ReturnFull, smtp.ReturnHeaders:
				env.Ret = v
			default:
				return replyBadParam("Bad RET parameter syntax"), false
			}
		case "ENVID":
			id, err := smtp.DecodeXtext(p.Value)
			if err != nil || id == "" || len(id) > 100 || !isPrintableASCII(id) {
				return replyBadParam("Bad ENVID parameter syntax"), false
			}
			env.EnvID = id
		case "AUTH":
			a, ok := ss.authParam(p.Value)
			if !ok {
				return replyBadParam("Bad AUTH parameter syntax"), false
			}
			env.Auth = a
		}
	}
	return smtp.Reply{}, true
}

// authParam checks MAIL's AUTH= value (RFC 4954 §5): "<>" or an xtext
// encoded mailbox. It returns what the envelope records: the decoded
// mailbox when an authenticated user is trusted to assert it, else "<>"
// ("the server MUST behave as if the AUTH=<> parameter was supplied").
func (ss *session) authParam(v string) (string, bool) {
	if v == "<>" {
		return "<>", true
	}
	box, err := smtp.DecodeXtext(v)
	if err != nil || box == "" {
		return "", false
	}
	if _, err := smtp.ParseAddress(box); err != nil {
		return "", false
	}
	user := ss.info.User
	if user == "" {
		return "<>", true
	}
	trust := ss.srv.cfg.TrustAuthParam
	if trust == nil {
		trust = func(user, box string) bool { return strings.EqualFold(user, box) }
	}
	if !trust(user, box) {
		return "<>", true
	}
	return box, true
}

// cmdRcpt runs RCPT TO (RFC 5321 §4.1.1.3) with its DSN parameters.
func (ss *session) cmdRcpt(line, arg string) smtp.Reply {
	if ss.env == nil {
		return replySequence("need MAIL command")
	}
	if ss.bdat != nil {
		return replySequence("RCPT after BDAT")
	}
	to, params, err := smtp.ParseRcptArg(arg)
	if err != nil {
		return syntaxReply(err, "RCPT TO:<address>")
	}
	if len(ss.env.Rcpts) >= ss.srv.cfg.MaxRecipients {
		return replyTooManyRcpts() // RFC 5321 §4.5.3.1.10
	}
	rcpt := smtp.Recipient{Addr: to}
	for _, p := range params {
		if !ss.info.ESMTP || !ss.srv.ext.dsn || (p.Key != "NOTIFY" && p.Key != "ORCPT") {
			return replyUnsupportedParam(p.Key)
		}
		switch p.Key {
		case "NOTIFY":
			n, ok := parseNotify(p.Value)
			if !ok {
				return replyBadParam("Bad NOTIFY parameter syntax")
			}
			rcpt.Notify = n
		case "ORCPT":
			o, ok := parseORcpt(p.Value)
			if !ok {
				return replyBadParam("Bad ORCPT parameter syntax")
			}
			rcpt.ORcpt = o
		}
	}
	if !ss.env.SMTPUTF8 && !to.IsASCII() {
		return replyNeedSMTPUTF8()
	}
	if r := ss.srv.policy.Rcpt(ss.info, to, params); r != nil {
		return ss.refused(r)
	}
	if to.Domain == "" && !ss.srv.cfg.Postmaster.IsNull() {
		// "<Postmaster>" without a domain must be accepted (RFC 5321
		// §4.1.1.3); a relay without local mailboxes hands it to the
		// configured postmaster.
		rcpt.Addr = ss.srv.cfg.Postmaster
	}
	ss.env.Rcpts = append(ss.env.Rcpts, rcpt)
	ss.tx.RcptLines = append(ss.tx.RcptLines, line)
	return replyRcptOK()
}

// syntaxReply turns a parse error into 501 5.5.4, with the parser's
// description when it has one.
func syntaxReply(err error, usage string) smtp.Reply {
	var se *smtp.SyntaxError
	if errors.As(err, &se) && se.Msg != "" {
		return replyBadParam("Syntax: " + usage + " (" + se.Msg + ")")
	}
	return replySyntax(usage)
}

// parseNotify parses NOTIFY= (RFC 3461 §4.1): NEVER alone, or a comma list
// of SUCCESS, FAILURE and DELAY.
func parseNotify(v string) (smtp.Notify, bool) {
	var n smtp.Notify
	for _, w := range strings.Split(v, ",") {
		var f smtp.Notify
		switch strings.ToUpper(w) {
		case "NEVER":
			f = smtp.NotifyNever
		case "SUCCESS":
			f = smtp.NotifySuccess
		case "FAILURE":
			f = smtp.NotifyFailure
		case "DELAY":
			f = smtp.NotifyDelay
		default:
			return 0, false
		}
		if n&f != 0 {
			return 0, false
		}
		n |= f
	}
	if n&smtp.NotifyNever != 0 && n != smtp.NotifyNever {
		return 0, false
	}
	return n, true
}

// parseORcpt parses ORCPT= (RFC 3461 §4.2): addr-type ";" xtext, and
// returns "addr-type;decoded-address".
func parseORcpt(v string) (string, bool) {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok || typ == "" || addr == "" {
		return "", false
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "", false
		}
	}
	dec, err := smtp.DecodeXtext(addr)
	if err != nil {
		return "", false
	}
	if strings.EqualFold(typ, "utf-8") { // RFC 6533 §3: utf-8-addr-xtext
		return typ + ";" + dec, true
	}
	if !isPrintableASCII(dec) {
		return "", false
	}
	return typ + ";" + dec, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 32 || s[i] > 126 {
			return false
		}
	}
	return true
}
