package smtpd

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// EHLO keywords whose behaviour the server implements. Config.Keywords may
// also hold other keywords (such as "HELP"): those are advertised verbatim
// and change nothing else.
const (
	Kw8BitMIME            = "8BITMIME"            // RFC 6152
	KwPipelining          = "PIPELINING"          // RFC 2920
	KwSize                = "SIZE"                // RFC 1870
	KwDSN                 = "DSN"                 // RFC 3461
	KwEnhancedStatusCodes = "ENHANCEDSTATUSCODES" // RFC 2034
	KwStartTLS            = "STARTTLS"            // RFC 3207
	KwAuth                = "AUTH"                // RFC 4954
	KwSMTPUTF8            = "SMTPUTF8"            // RFC 6531
	KwChunking            = "CHUNKING"            // RFC 3030
	KwBinaryMIME          = "BINARYMIME"          // RFC 3030
	KwRequireTLS          = "REQUIRETLS"          // RFC 8689
)

// Timeouts are the server's per-phase timeouts (RFC 5321 §4.5.3.2). Data
// and Write are idle deadlines set before every read or write; Greeting and
// Command bound a whole command line, and HelloPhase, EnvelopePhase and
// DataTotal whole phases, so a client that trickles a byte at a time is
// cut off too.
type Timeouts struct {
	// Greeting is how long the server waits for the client's whole first
	// command line after the greeting (and, on an implicit TLS listener,
	// for the TLS handshake before it). 0 means Command.
	Greeting time.Duration
	// Command is how long the server waits for the whole next command line
	// (RFC 5321 §4.5.3.2.7: at least 5 minutes), from the moment it is
	// ready for it: octets arriving one by one do not extend it.
	Command time.Duration
	// Data is how long the server waits for more message content after the
	// 354 reply or within a BDAT chunk (the client's "data block" time,
	// RFC 5321 §4.5.3.2.5: 3 minutes).
	Data time.Duration
	// DataTotal bounds one whole DATA transfer, from the 354 reply to the
	// final dot, or one BDAT transfer, from the first chunk to the end of
	// the LAST one. Unlike Data it is not renewed by each read, so a
	// client that sends a byte every few seconds (slowloris) is cut off
	// with 421 4.4.2 once the transfer has taken DataTotal.
	DataTotal time.Duration
	// Write is how long sending one flush of replies may take.
	Write time.Duration
	// HelloPhase bounds the time outside mail transactions from the
	// connection (or the last message stored) on: greeting, EHLO,
	// STARTTLS, AUTH, RSET, NOOP and transactions reset without a message,
	// however quickly each line comes. A client that never gets a message
	// stored cannot hold a connection slot for longer. 0 means 5 minutes.
	HelloPhase time.Duration
	// EnvelopePhase bounds the stretch from an accepted MAIL to DATA or the
	// first BDAT (the RCPT commands). 0 means 10 minutes.
	EnvelopePhase time.Duration
	// PregreetWait, when positive, is how long the server waits before
	// sending its greeting to a client that is not Trusted; a client that
	// sends anything in that time (RFC 5321 §3.1 says it must wait for the
	// greeting) gets 554 5.5.1 and is disconnected at once, like Postfix's
	// pregreet test. 0: the greeting is sent at once.
	PregreetWait time.Duration
}

// Config configures a Server. The zero value of a field means its default
// where DefaultConfig states one; use DefaultConfig as the starting point.
type Config struct {
	// Hostname is the server's name in the greeting, the EHLO reply and the
	// Received field.
	Hostname string
	// Keywords are the EHLO keywords advertised, in order. The known ones
	// (the Kw constants) switch their extension on; a parameter of an
	// extension not listed gets 555 5.5.4. SIZE is advertised with
	// MaxMessageSize ("SIZE n" here sets MaxMessageSize when that is 0).
	// STARTTLS and AUTH listed here are ignored: the server advertises them
	// itself, after the configured keywords, when TLS and Auth say so (see
	// those fields). REQUIRETLS is advertised only on a TLS session
	// (RFC 8689 §4.1). BINARYMIME requires CHUNKING (RFC 3030 §3).
	Keywords []string
	// NoESMTP makes the server a plain RFC 821-style server: EHLO is
	// answered 502 and only HELO works.
	NoESMTP bool
	// OmitReceived stops the server from prepending its Received field
	// (the sink uses it so that captures are byte-exact).
	OmitReceived bool
	// MaxMessageSize is the SIZE limit in octets of content; 0: none.
	MaxMessageSize int64
	// MaxRecipients is the number of RCPT accepted per transaction; at least
	// 100 (RFC 5321 §4.5.3.1.8). 0 means 1000. Each RCPT beyond it gets
	// 452 4.5.3 (RFC 5321 §4.5.3.1.10), as from Postfix: the client sends
	// the rest in another transaction. It is the relay's only recipient
	// limit.
	MaxRecipients int
	// MaxErrors is the number of negative replies after which the session
	// gets 421 and is closed. 0 means 20.
	MaxErrors int
	// MaxReceived is the number of Received fields beyond which a message is
	// refused as a loop (554 5.4.6). 0 means 100.
	MaxReceived int
	// BareNewline says what to do with a bare CR or LF in DATA content.
	BareNewline smtp.BarePolicy
	// ForbidUnauthPipelining closes an unauthenticated session that sends
	// commands ahead where RFC 2920 forbids it (after EHLO, HELO or DATA, or
	// at all when PIPELINING was not offered), like Postfix's
	// smtpd_forbid_unauth_pipelining.
	ForbidUnauthPipelining bool
	// Timeouts are the per-phase idle timeouts; zero fields take defaults.
	Timeouts Timeouts
	// MaxConnections limits concurrent sessions; 0: no limit. Beyond it a
	// client gets 421 4.7.0 and is disconnected.
	MaxConnections int
	// MaxConnectionsPerIP limits concurrent sessions from one client IP
	// address; 0: no limit.
	MaxConnectionsPerIP int
	// ReservedConnections of MaxConnections are kept for trusted clients:
	// those Trusted accepts, and addresses that authenticated successfully
	// within the last hour. Other clients are refused with 421 4.7.0 once
	// MaxConnections-ReservedConnections sessions run. 0: no reserve.
	ReservedConnections int
	// Trusted reports whether a client address is trusted (Ferry passes
	// its relay networks): it may use the reserved connections and skips
	// the pregreet wait. nil trusts nobody.
	Trusted func(remote net.Addr) bool
	// Logger receives the mail log events; nil discards them.
	Logger *slog.Logger
	// Postmaster, when set, is the address "RCPT TO:<Postmaster>" without
	// a domain is delivered to (RFC 5321 §4.1.1.3); when null such mail
	// keeps the bare "Postmaster" recipient and follows the "*" route.
	Postmaster smtp.Path
	// TranscriptDir, when set, is where a transcript of every session is
	// written as SESSION.log (AUTH data redacted).
	TranscriptDir string
	// TranscriptFor, when set, decides at each new connection whether its
	// session is recorded: it returns the directory for SESSION.log ("":
	// none) and whether message content is recorded line by line
	// (otherwise only its size is noted). It takes precedence over
	// TranscriptDir and may change its answers while the server runs.
	TranscriptFor func(remote net.Addr) (dir string, fullContent bool)

	// TLS, when set, enables TLS: STARTTLS (RFC 3207) is offered on
	// plaintext sessions, or every connection starts with a TLS handshake
	// when ImplicitTLS is set. The server never negotiates below TLS 1.2.
	// Use CertStore.TLSConfig for certificates that can be reloaded.
	TLS *tls.Config
	// ImplicitTLS makes the listener a TLS one (port 465 style, RFC 8314
	// §3.3): the handshake comes before the greeting and STARTTLS is not
	// offered.
	ImplicitTLS bool
	// RequireTLS refuses MAIL, RCPT, DATA, BDAT and AUTH before STARTTLS
	// with 530 5.7.0 (RFC 3207 §4).
	RequireTLS bool
	// Auth, when set, enables AUTH (RFC 4954) with the PLAIN and LOGIN
	// mechanisms, checking credentials with it. AUTH is offered only on a
	// TLS session unless AllowInsecureAuth is set.
	Auth Authenticator
	// AllowInsecureAuth offers AUTH on plaintext sessions too, for loopback
	// set-ups where the channel cannot be observed.
	AllowInsecureAuth bool
	// AuthFailureDelay is how long the server waits before answering a
	// failed authentication. 0 means 1s; negative means no delay.
	AuthFailureDelay time.Duration
	// AuthMaxFailures is the number of failed authentications from one
	// client IP address within AuthLockoutWindow after which AUTH from that
	// address is refused with 421 4.7.0 until the window has passed.
	// 0 means 10; negative means no lock-out.
	AuthMaxFailures int
	// AuthLockoutWindow is the lock-out window. 0 means 5 minutes.
	AuthLockoutWindow time.Duration
	// TrustAuthParam says whether an authenticated user may assert mailbox
	// as the original submitter in MAIL's AUTH= parameter (RFC 4954 §5).
	// nil trusts a user only for the mailbox equal to its own name
	// (compared without regard to case); an untrusted assertion is recorded
	// as "<>".
	TrustAuthParam func(user, mailbox string) bool
}

// defaultTimeouts are the server's timeouts unless told otherwise: the
// RFC 5321 §4.5.3.2 minimums, and half an hour for a whole transfer.
func defaultTimeouts() Timeouts {
	return Timeouts{Greeting: 5 * time.Minute, Command: 5 * time.Minute, Data: 3 * time.Minute,
		DataTotal: 30 * time.Minute, Write: 5 * time.Minute, HelloPhase: 5 * time.Minute,
		EnvelopePhase: 10 * time.Minute}
}

// DefaultConfig returns the configuration Ferry's listener uses unless told
// otherwise.
func DefaultConfig() Config {
	return Config{
		Hostname: "localhost",
		Keywords: []string{KwPipelining, KwSize, Kw8BitMIME, KwEnhancedStatusCodes,
			KwDSN, KwSMTPUTF8, KwChunking, KwBinaryMIME},
		MaxMessageSize:         50 << 20,
		MaxRecipients:          1000,
		MaxErrors:              20,
		MaxReceived:            100,
		BareNewline:            smtp.BareNormalize,
		ForbidUnauthPipelining: true,
		Timeouts:               defaultTimeouts(),
		MaxConnections:         10000,
		MaxConnectionsPerIP:    50,
		AuthFailureDelay:       time.Second,
		AuthMaxFailures:        10,
		AuthLockoutWindow:      5 * time.Minute,
	}
}

// Validate reports the first inconsistency in the configuration.
func (c *Config) Validate() error {
	if c.Hostname == "" || strings.ContainsAny(c.Hostname, " \r\n") {
		return fmt.Errorf("smtpd: hostname %q: want a domain name", c.Hostname)
	}
	if c.MaxRecipients != 0 && c.MaxRecipients < 100 {
		return fmt.Errorf("smtpd: max recipients %d: RFC 5321 §4.5.3.1.8 requires at least 100", c.MaxRecipients)
	}
	if c.MaxMessageSize < 0 || c.MaxErrors < 0 || c.MaxReceived < 0 || c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0 ||
		c.ReservedConnections < 0 || c.Timeouts.PregreetWait < 0 {
		return fmt.Errorf("smtpd: negative limit in configuration")
	}
	if c.ReservedConnections > 0 && c.MaxConnections > 0 && c.ReservedConnections >= c.MaxConnections {
		return fmt.Errorf("smtpd: reserved connections %d: want fewer than the connection limit %d", c.ReservedConnections, c.MaxConnections)
	}
	seen := map[string]bool{}
	for _, k := range c.Keywords {
		f := strings.Fields(k)
		if len(f) == 0 || strings.ContainsAny(k, "\r\n") {
			return fmt.Errorf("smtpd: EHLO keyword %q: want a keyword and optional parameters", k)
		}
		name := strings.ToUpper(f[0])
		if seen[name] {
			return fmt.Errorf("smtpd: EHLO keyword %s listed twice", name)
		}
		seen[name] = true
		if name == KwSize && len(f) > 1 {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n < 0 || len(f) > 2 {
				return fmt.Errorf("smtpd: EHLO keyword %q: want SIZE or SIZE <octets> (RFC 1870)", k)
			}
			if c.MaxMessageSize != 0 && n != c.MaxMessageSize {
				return fmt.Errorf("smtpd: EHLO keyword %q conflicts with the message size limit %d", k, c.MaxMessageSize)
			}
		}
	}
	if seen[KwBinaryMIME] && !seen[KwChunking] {
		return fmt.Errorf("smtpd: EHLO keyword BINARYMIME requires CHUNKING (RFC 3030 §3)")
	}
	return c.validateSecurity()
}

// validateSecurity checks the TLS and AUTH settings.
func (c *Config) validateSecurity() error {
	if c.TLS == nil && (c.ImplicitTLS || c.RequireTLS) {
		return fmt.Errorf("smtpd: implicit or required TLS needs a certificate (no TLS configuration)")
	}
	if c.TLS != nil && c.TLS.GetCertificate == nil && len(c.TLS.Certificates) == 0 && c.TLS.GetConfigForClient == nil {
		return fmt.Errorf("smtpd: TLS configuration has no certificate")
	}
	if c.Auth != nil && c.TLS == nil && !c.AllowInsecureAuth {
		return fmt.Errorf("smtpd: AUTH would never be offered: it needs TLS, or allowing insecure AUTH")
	}
	if c.AuthLockoutWindow < 0 {
		return fmt.Errorf("smtpd: negative AUTH lock-out window")
	}
	return nil
}

// withDefaults returns c with zero limits and timeouts replaced by defaults,
// and the size limit taken from a "SIZE n" keyword when it has none.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, k := range c.Keywords {
		if f := strings.Fields(k); len(f) == 2 && strings.EqualFold(f[0], KwSize) && c.MaxMessageSize == 0 {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n > 0 {
				c.MaxMessageSize = n
			}
		}
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = d.MaxRecipients
	}
	if c.MaxErrors == 0 {
		c.MaxErrors = d.MaxErrors
	}
	if c.MaxReceived == 0 {
		c.MaxReceived = d.MaxReceived
	}
	if c.Timeouts.Command == 0 {
		c.Timeouts.Command = d.Timeouts.Command
	}
	if c.Timeouts.Data == 0 {
		c.Timeouts.Data = d.Timeouts.Data
	}
	if c.Timeouts.Greeting == 0 {
		c.Timeouts.Greeting = c.Timeouts.Command
	}
	if c.Timeouts.DataTotal == 0 {
		c.Timeouts.DataTotal = d.Timeouts.DataTotal
	}
	if c.Timeouts.Write == 0 {
		c.Timeouts.Write = d.Timeouts.Write
	}
	if c.Timeouts.HelloPhase == 0 {
		c.Timeouts.HelloPhase = d.Timeouts.HelloPhase
	}
	if c.Timeouts.EnvelopePhase == 0 {
		c.Timeouts.EnvelopePhase = d.Timeouts.EnvelopePhase
	}
	if c.AuthFailureDelay == 0 {
		c.AuthFailureDelay = d.AuthFailureDelay
	}
	if c.AuthMaxFailures == 0 {
		c.AuthMaxFailures = d.AuthMaxFailures
	}
	if c.AuthLockoutWindow == 0 {
		c.AuthLockoutWindow = d.AuthLockoutWindow
	}
	if c.TLS != nil {
		// RFC 8996 deprecates TLS 1.0 and 1.1; the caller's settings are
		// copied so that later changes to them have no effect.
		c.TLS = c.TLS.Clone()
		c.TLS.MinVersion = max(c.TLS.MinVersion, tls.VersionTLS12)
		if c.TLS.CipherSuites == nil {
			c.TLS.CipherSuites = smtp.CipherSuites() // no CBC-SHA1 suites
		}
	}
	return c
}

// extensions is the parsed keyword configuration of one server.
type extensions struct {
	eightBit, pipelining, size, dsn, enhanced, smtputf8, chunking, binary, requireTLS bool
	// keywords are the keyword lines to advertise, in configured order.
	keywords []string
}

// parseKeywords reads the configured keywords; maxSize is the SIZE limit.
func parseKeywords(list []string, maxSize int64) extensions {
	var e extensions
	for _, k := range list {
		f := strings.Fields(k)
		name := strings.ToUpper(f[0])
		switch name {
		case Kw8BitMIME:
			e.eightBit = true
		case KwPipelining:
			e.pipelining = true
		case KwSize:
			e.size = true
			f = []string{KwSize}
			if maxSize > 0 {
				f = append(f, strconv.FormatInt(maxSize, 10))
			}
		case KwDSN:
			e.dsn = true
		case KwEnhancedStatusCodes:
			e.enhanced = true
		case KwSMTPUTF8:
			e.smtputf8 = true
		case KwChunking:
			e.chunking = true
		case KwBinaryMIME:
			e.binary = true
		case KwRequireTLS:
			e.requireTLS = true
		case KwStartTLS, KwAuth:
			continue // advertised by the session when configured and offered
		}
		e.keywords = append(e.keywords, strings.Join(f, " "))
	}
	return e
}
