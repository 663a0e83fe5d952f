package smtpd

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Authenticator checks the credentials a client gives with AUTH (RFC 4954).
// internal/auth's user file implements it.
type Authenticator interface {
	// Authenticate reports whether password is user's. A non-nil error
	// means the check could not be made (the client gets 454 4.7.0).
	Authenticate(user, password string) (bool, error)
}

// Mechanisms offered, in the order EHLO lists them.
const (
	MechPlain = "PLAIN" // RFC 4616
	MechLogin = "LOGIN" // draft-murchison-sasl-login
)

// maxAuthLine is the longest SASL response line accepted, CRLF included
// (RFC 4954 §4: 12288 octets).
const maxAuthLine = 12288

// maxAuthSteps bounds the challenges of one exchange (LOGIN needs two).
const maxAuthSteps = 4

var (
	// errBadCredentials marks a failed credential check.
	errBadCredentials = errors.New("smtpd: authentication credentials invalid")
	// errAuthUnavailable marks a check that could not be made.
	errAuthUnavailable = errors.New("smtpd: authentication temporarily unavailable")
	// errAuthCancelled marks a client's "*" (RFC 4954 §4).
	errAuthCancelled = errors.New("smtpd: authentication cancelled by the client")
	// errAuthBase64 marks a response that is not valid base64.
	errAuthBase64 = errors.New("smtpd: malformed base64 in AUTH response")
	// errAuthLockedOut marks a check refused because the client's address
	// reached its failure limit while the exchange ran.
	errAuthLockedOut = errors.New("smtpd: too many failed authentications")
	// errAuthBusy marks a check refused because failures and checks in
	// progress from the client's address reach the limit.
	errAuthBusy = errors.New("smtpd: too many authentications in progress")
	// errAuthLineTooLong marks a response over maxAuthLine octets.
	errAuthLineTooLong = errors.New("smtpd: AUTH response line too long")
)

// authOffered reports whether EHLO lists AUTH in this session and AUTH may
// be used: configured, and on TLS unless insecure AUTH is allowed.
func (ss *session) authOffered() bool {
	cfg := &ss.srv.cfg
	if cfg.Auth == nil {
		return false
	}
	if ss.info.TLS {
		return true
	}
	return cfg.AllowInsecureAuth && !cfg.RequireTLS
}

// authKeyword is the EHLO line for AUTH.
const authKeyword = KwAuth + " " + MechPlain + " " + MechLogin

// cmdAuth runs AUTH (RFC 4954 §4). It returns the final reply, or the zero
// Reply when the session ended.
func (ss *session) cmdAuth(arg string) smtp.Reply {
	cfg := &ss.srv.cfg
	switch {
	case cfg.Auth == nil:
		return replyNotImpl()
	case !ss.authOffered():
		return replyEncryptionRequired()
	case !ss.info.ESMTP:
		return replySequence("send EHLO first")
	case ss.info.User != "":
		return replySequence("already authenticated") // RFC 4954 §4
	case ss.env != nil:
		return replySequence("MAIL transaction in progress") // RFC 4954 §4
	}
	mech, initial, hasInitial := strings.Cut(trimSpace(arg), " ")
	mech = strings.ToUpper(mech)
	if mech == "" || strings.ContainsAny(initial, " \t") {
		return replySyntax("AUTH mechanism [initial-response]")
	}
	ip := remoteIP(ss.info.Remote)
	if ss.srv.authLimit.locked(ip, time.Now()) {
		r := replyAuthLockedOut(cfg.Hostname)
		ss.logAuthFailed(mech, "locked out")
		return r
	}
	var user string
	checked := false // the check ran and its failure is counted
	check := func(username, password string) error {
		// Count the attempt before the hash is computed: parallel checks
		// from one address cannot all start before the first fails.
		switch ss.srv.authLimit.attempt(ip, time.Now()) {
		case attemptLocked:
			return errAuthLockedOut
		case attemptBusy:
			return errAuthBusy
		}
		ok, err := cfg.Auth.Authenticate(username, password)
		checked = true
		ss.srv.authLimit.finish(ip, !ok && err == nil, time.Now())
		switch {
		case err != nil:
			if ss.log != nil {
				ss.log.Error("authentication check failed", slog.String("session", ss.info.ID), slog.String("error", err.Error()))
			}
			return errAuthUnavailable
		case !ok:
			return errBadCredentials
		}
		user = username
		return nil
	}
	var server sasl.Server
	switch mech {
	case MechPlain:
		server = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return errBadCredentials // no authorization identities (RFC 4616 §2)
			}
			return check(username, password)
		})
	case MechLogin:
		server = &loginServer{check: check}
	default:
		return replyUnknownMechanism()
	}
	var resp []byte
	if hasInitial {
		b, err := decodeSASL(initial)
		if err != nil {
			return replyBadBase64()
		}
		resp = b
	}
	err := ss.exchange(server, resp)
	switch {
	case err == nil && user != "":
		ss.info.User = user
		ss.srv.authLimit.succeeded(ip, time.Now())
		if ss.log != nil {
			ss.log.Info("authenticated", slog.String("session", ss.info.ID), slog.String("mechanism", mech),
				slog.String("user", user))
		}
		return replyAuthOK()
	case ss.done:
		return smtp.Reply{}
	case errors.Is(err, errAuthCancelled):
		return replyAuthCancelled()
	case errors.Is(err, errAuthBase64):
		return replyBadBase64()
	case errors.Is(err, errAuthLineTooLong):
		return replyLineTooLong()
	case errors.Is(err, errAuthUnavailable):
		return replyAuthUnavailable()
	case errors.Is(err, errAuthLockedOut):
		ss.logAuthFailed(mech, "locked out")
		return replyAuthLockedOut(cfg.Hostname)
	case errors.Is(err, errAuthBusy):
		ss.logAuthFailed(mech, "too many attempts in progress")
		return replyAuthBusy()
	}
	// Bad credentials, or a response the mechanism could not parse.
	ss.logAuthFailed(mech, "invalid credentials")
	if !checked {
		ss.srv.authLimit.fail(ip, time.Now())
	}
	if ss.srv.authLimit.locked(ip, time.Now()) {
		return replyAuthLockedOut(cfg.Hostname)
	}
	if d := cfg.AuthFailureDelay; d > 0 {
		time.Sleep(d) // slows down guessing on this connection
	}
	return replyAuthFailed()
}

// exchange runs the SASL exchange: challenges as 334 replies, responses
// read as lines (each recorded as a secret), until the mechanism is done.
func (ss *session) exchange(server sasl.Server, resp []byte) error {
	for range maxAuthSteps {
		challenge, done, err := server.Next(resp)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		// Written by hand so that an empty challenge is "334 " (RFC 4954
		// §4), which clients parse more reliably than a bare "334".
		text := base64.StdEncoding.EncodeToString(challenge)
		ss.tr.Server(smtp.NewReply(smtp.CodeAuthContinue, "", text))
		ss.w.WriteString("334 " + text + "\r\n")
		if err := ss.w.Flush(); err != nil {
			ss.done = true
			return fmt.Errorf("smtpd: send AUTH challenge: %w", err)
		}
		line, err := readAuthLine(ss.r)
		if err != nil && !errors.Is(err, errAuthLineTooLong) {
			ss.readFailed()
			ss.done = true
			return err
		}
		ss.tr.ClientSecret()
		if err != nil {
			return err
		}
		if line == "*" {
			return errAuthCancelled
		}
		if resp, err = decodeSASL(line); err != nil {
			return err
		}
	}
	return errors.New("smtpd: too many AUTH steps")
}

// decodeSASL decodes a client response: base64, or "=" for an empty one
// (RFC 4954 §4).
func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || s == "" {
		return nil, errAuthBase64
	}
	return b, nil
}

// readAuthLine reads one SASL response line without its line ending; a line
// over maxAuthLine octets is read to its end and refused.
func readAuthLine(r *bufio.Reader) (string, error) {
	var b []byte
	over := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !over && len(b)+len(chunk) > maxAuthLine {
			over, b = true, nil
		}
		if !over {
			b = append(b, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	if over {
		return "", errAuthLineTooLong
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// logAuthFailed logs a failed authentication without the credentials.
func (ss *session) logAuthFailed(mech, reason string) {
	if ss.log != nil {
		ss.log.Warn("authentication failed", slog.String("session", ss.info.ID),
			slog.String("client", ss.info.Remote.String()), slog.String("mechanism", mech), slog.String("reason", reason))
	}
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login-00): "Username:", then "Password:". An
// initial response is taken as the user name.
type loginServer struct {
	check func(user, password string) error
	step  int
	user  string
}

// Next implements sasl.Server.
func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.user, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}
