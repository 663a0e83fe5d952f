package smtpd

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/ferrymta/ferry/internal/smtp"
)

// CertStore holds a certificate and key loaded from PEM files and hands it
// to TLS handshakes. Reload reads the files again (on SIGHUP, say); new
// handshakes use the new certificate, sessions already in TLS keep theirs.
// Its methods are safe for concurrent use.
type CertStore struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// NewCertStore loads the certificate chain in certFile and the private key
// in keyFile (both PEM).
func NewCertStore(certFile, keyFile string) (*CertStore, error) {
	s := &CertStore{certFile: certFile, keyFile: keyFile}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the certificate and key files again. On failure the
// certificate in use is kept and the error says why.
func (s *CertStore) Reload() error {
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("smtpd: load certificate %s with key %s: %w", s.certFile, s.keyFile, err)
	}
	s.cert.Store(&c)
	return nil
}

// GetCertificate returns the current certificate; it fits
// tls.Config.GetCertificate.
func (s *CertStore) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// TLSConfig returns a server configuration that takes its certificate from
// s at every handshake and negotiates TLS 1.2 or later (RFC 8996) with
// AEAD cipher suites only (smtp.CipherSuites).
func (s *CertStore) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.GetCertificate, CipherSuites: smtp.CipherSuites()}
}

// startTLSOffered reports whether EHLO lists STARTTLS in this session.
func (ss *session) startTLSOffered() bool {
	return ss.srv.cfg.TLS != nil && !ss.info.TLS
}

// tlsRequired reports whether verb must wait for STARTTLS in this session
// (RFC 3207 §4: 530 for commands other than NOOP, EHLO, STARTTLS and QUIT;
// RSET, HELO, HELP and VRFY are harmless and allowed too). BDAT is refused
// by cmdBDAT, which reads the chunk first (RFC 3030 §2).
func (ss *session) tlsRequired(verb string) bool {
	if !ss.srv.cfg.RequireTLS || ss.info.TLS {
		return false
	}
	switch verb {
	case "MAIL", "RCPT", "DATA", "BDAT", "AUTH":
		return true
	}
	return false
}

// cmdStartTLS checks STARTTLS (RFC 3207 §4) and returns 220 when the
// handshake may start; the caller sends it, then calls upgrade.
func (ss *session) cmdStartTLS(arg string) smtp.Reply {
	switch {
	case ss.srv.cfg.TLS == nil:
		return replyNotImpl()
	case ss.info.TLS:
		return replySequence("TLS already active")
	case arg != "":
		return replySyntax("STARTTLS")
	case ss.env != nil:
		return replySequence("MAIL transaction in progress")
	}
	return replyTLSReady()
}

// upgrade runs the TLS handshake after the 220 to STARTTLS and resets the
// session to its state after the greeting (RFC 3207 §4.2).
func (ss *session) upgrade() {
	// Octets the client sent after STARTTLS arrived before it could have
	// seen our 220: they were not sent by a client doing TLS, but injected
	// into the plaintext stream (CVE-2011-0411). Drop them; they must never
	// be read as commands of the TLS session.
	if n := ss.r.Buffered(); n > 0 {
		ss.r.Discard(n)
		ss.tr.Note(fmt.Sprintf("<%d octets pipelined after STARTTLS discarded>", n))
		if ss.log != nil {
			ss.log.Warn("discarded input pipelined after STARTTLS", slog.String("session", ss.info.ID),
				slog.String("client", ss.info.Remote.String()), slog.Int("octets", n))
		}
	}
	if err := ss.w.Flush(); err != nil {
		ss.done = true
		return
	}
	if !ss.handshake() {
		ss.done = true
		return
	}
	ss.resetTransaction()
	ss.info.Helo = ""
	ss.info.ESMTP = false
	ss.info.User = ""
}

// handshake runs the server side of a TLS handshake on the connection and
// switches the session's reader and writer to the TLS channel. Whatever the
// reader had buffered is dropped. It reports success.
func (ss *session) handshake() bool {
	tc := tls.Server(ss.conn, ss.srv.cfg.TLS)
	if err := tc.HandshakeContext(ss.srv.ctx); err != nil {
		ss.tr.Note("<TLS handshake failed>")
		if ss.log != nil {
			ss.log.Info("TLS handshake failed", slog.String("session", ss.info.ID),
				slog.String("client", ss.info.Remote.String()), slog.String("error", err.Error()))
		}
		return false
	}
	ss.r.Reset(tc)
	ss.w.Reset(tc)
	st := tc.ConnectionState()
	ss.info.TLS = true
	ss.info.TLSVersion = tlsVersionName(st.Version)
	ss.info.TLSCipher = tls.CipherSuiteName(st.CipherSuite)
	ss.tr.Note("<TLS established: " + ss.info.TLSVersion + " " + ss.info.TLSCipher + ">")
	if ss.log != nil {
		ss.log.Info("tls", slog.String("session", ss.info.ID), slog.String("version", ss.info.TLSVersion),
			slog.String("cipher", ss.info.TLSCipher))
	}
	return true
}

// tlsVersionName returns a TLS version the way Postfix writes it in the
// Received field: "TLSv1.3".
func tlsVersionName(v uint16) string {
	return strings.Replace(tls.VersionName(v), "TLS ", "TLSv", 1)
}

func replyTLSReady() smtp.Reply { return reply(220, "2.0.0", "Ready to start TLS") }

// replyTLSRequired is RFC 3207 §4's answer before STARTTLS on a listener
// that requires TLS.
func replyTLSRequired() smtp.Reply {
	return reply(530, "5.7.0", "Must issue a STARTTLS command first")
}
