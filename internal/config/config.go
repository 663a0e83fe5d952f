// Package config holds Ferry's configuration: the Config struct, its built-in
// defaults (so "ferry serve" runs with no file), loading from TOML, and
// validation whose every error names the file, the line and the expected
// form. Every option is documented with its default in docs/config.md.
//
// The package has no globals: Default returns a fresh value, Load and Parse
// return a new Config built on top of Default.
package config

import (
	"github.com/ferrymta/ferry/internal/access"
	"github.com/ferrymta/ferry/internal/route"

	"net/netip"
	"os"
	"time"
)

// Config is Ferry's whole configuration.
type Config struct {
	// Hostname is the relay's own name, used in the greeting, the
	// Received: field and DSNs. Default: os.Hostname().
	Hostname string
	// Listeners are the inbound SMTP listeners; default one on
	// 127.0.0.1:2525.
	Listeners []Listener
	// Limits bound inbound connections and sessions.
	Limits Limits
	// Relay says who may relay where (internal/access).
	Relay Relay
	// Timeouts are the inbound per-phase timeouts (RFC 5321 §4.5.3.2).
	Timeouts Timeouts
	// Queue configures the durable store and the retry schedule.
	Queue Queue
	// Delivery configures the outbound client.
	Delivery Delivery
	// Routes are per-domain next hops and policies, most specific first
	// when matched (see docs/config.md).
	Routes []Route
	// Log configures logging.
	Log Log
	// Admin configures the admin HTTP API.
	Admin Admin
	// DSN configures delivery status notifications.
	DSN DSN
	// Transcripts selects sessions whose protocol transcript is written
	// (besides a listener's TranscriptDir).
	Transcripts Transcripts
	// DKIM configures DKIM signing, verification and ARC (see dkim.go).
	DKIM DKIM
}

// Listener is one inbound SMTP listener.
type Listener struct {
	// Address is "host:port" to listen on.
	Address string
	// Keywords are the EHLO keywords offered, upper case, each one of
	// KnownKeywords().
	Keywords []string
	// MaxMessageSize is the SIZE limit in octets (RFC 1870); 0 means no
	// limit.
	MaxMessageSize int64
	// MaxRecipients is the recipient limit per message, at least 100
	// (RFC 5321 §4.5.3.1.8).
	MaxRecipients int
	// BareNewline is BareNormalize or BareReject.
	BareNewline string
	// TranscriptDir, when not empty, receives one transcript file per
	// connection (AUTH data redacted).
	TranscriptDir string
	// TLSCert is the PEM certificate chain file; with TLSKey it enables
	// STARTTLS (RFC 3207). Empty: no TLS.
	TLSCert string
	// TLSKey is the PEM private key file of TLSCert.
	TLSKey string
	// RequireTLS refuses MAIL, RCPT, DATA, BDAT and AUTH before STARTTLS
	// (530 5.7.0, RFC 3207 §4); needs TLSCert.
	RequireTLS bool
	// ImplicitTLS starts every connection with the TLS handshake (port 465
	// style, RFC 8314 §3.3); needs TLSCert.
	ImplicitTLS bool
	// AuthUsersFile is the user file (docs/auth.md); it enables AUTH
	// (RFC 4954). Empty: no AUTH.
	AuthUsersFile string
	// AllowInsecureAuth offers AUTH without TLS (loopback set-ups only).
	AllowInsecureAuth bool
}

// Relay is the relay access configuration: who may relay to any domain,
// which domains anyone may send to, sender rules and rate limits
// (internal/access).
type Relay struct {
	// Networks are the client networks allowed to relay to any domain;
	// default loopback (access.DefaultRelayNetworks). Never nil after
	// Parse: an empty list means no network may relay, only authenticated
	// users.
	Networks []netip.Prefix
	// AcceptDomains are the domains anyone may send to, normalized
	// (access.NormalizeDomain); a leading dot stands for the subdomains.
	AcceptDomains []string
	// SenderRules restrict the sender domains of matching clients.
	SenderRules []access.SenderRule
	// PerIP limits messages per client address; zero: no limit.
	PerIP access.RateLimit
	// PerUser limits messages per authenticated user; zero: no limit.
	PerUser access.RateLimit
}

// Bare CR/LF policies for Listener.BareNewline (Postfix's
// smtpd_forbid_bare_newline).
const (
	BareNormalize = "normalize"
	BareReject    = "reject"
)

// Limits bound the inbound side.
type Limits struct {
	// MaxConnections is the total number of concurrent inbound connections.
	MaxConnections int
	// MaxConnectionsPerIP is the concurrent connections from one client IP.
	MaxConnectionsPerIP int
	// MaxErrors is the number of error replies after which a session gets
	// 421 and is closed.
	MaxErrors int
	// MaxReceived is the number of Received: fields beyond which a message
	// is refused as a loop (554 5.4.6).
	MaxReceived int
	// ReservedConnections of MaxConnections are kept for clients in the
	// relay networks and addresses that authenticated recently.
	ReservedConnections int
	// MaxAuthChecks is the number of password checks that run at once.
	MaxAuthChecks int
}

// Timeouts are inbound idle timeouts per phase (RFC 5321 §4.5.3.2).
type Timeouts struct {
	// Greeting bounds the wait for the client's first command.
	Greeting time.Duration
	// Command bounds the wait for each next command.
	Command time.Duration
	// DataBlock bounds each read of DATA or BDAT content.
	DataBlock time.Duration
	// DataTotal bounds a whole DATA or BDAT transfer.
	DataTotal time.Duration
	// HelloPhase bounds the stretch before each MAIL.
	HelloPhase time.Duration
	// EnvelopePhase bounds the stretch from MAIL to DATA or BDAT.
	EnvelopePhase time.Duration
	// PregreetWait is the pause before the greeting to clients outside the
	// relay networks; 0: none.
	PregreetWait time.Duration
	// AuthCheckWait bounds the wait for a free password check.
	AuthCheckWait time.Duration
}

// Queue configures the durable store and the retry schedule.
type Queue struct {
	// Spool is the directory of the segment log.
	Spool string
	// RetryInitial is the first retry delay; it doubles up to RetryMax.
	RetryInitial time.Duration
	// RetryMax caps the retry delay.
	RetryMax time.Duration
	// Lifetime is how long a message is retried before it bounces.
	Lifetime time.Duration
	// BounceLifetime is Lifetime for DSNs (null sender).
	BounceLifetime time.Duration
	// DelayWarning is when a "delayed" DSN is sent; 0 disables it.
	DelayWarning time.Duration
	// HopConcurrency is the number of concurrent deliveries per next hop.
	HopConcurrency int
	// SegmentSize is the size of one segment file in octets.
	SegmentSize int64
	// Reserve is the segment space in octets kept for delivery records
	// when the spool fills (new mail gets 452 4.3.1 first); 0 means
	// SegmentSize/16.
	Reserve int64
	// Backend is where the queue lives: BackendSegment (the segment log in
	// Spool, the default) or BackendPostgres (a PostgreSQL database shared
	// by several relays, at URL).
	Backend string
	// URL is the PostgreSQL connection URL of the postgres backend.
	URL string
	// Node names this relay in the shared queue's leases; empty means
	// Hostname.
	Node string
	// LeaseTimeout is how long a lease of the postgres backend lasts
	// without a heartbeat: a dead relay's work is taken over after it.
	LeaseTimeout time.Duration
}

// Delivery configures the outbound client.
type Delivery struct {
	// EHLOName is the name sent in EHLO/HELO; empty means Hostname (see
	// Config.EHLOName).
	EHLOName string
	// Workers is the number of concurrent delivery workers.
	Workers int
	// MaxMessagesPerConnection is how many messages one connection carries
	// before it is closed.
	MaxMessagesPerConnection int
	// IdleTimeout is how long an idle connection is kept for reuse.
	IdleTimeout time.Duration
	// Smarthost is a next-hop spec (see route.ParseNextHops) used for every domain
	// without a route of its own; empty means MX lookup of the recipient
	// domain.
	Smarthost string
	// SmarthostHops is Smarthost parsed; nil when Smarthost is empty.
	SmarthostHops []route.NextHop
	// TLSCAFile is a PEM file of CA certificates that routes with tls =
	// "required" verify next hops' certificates against; empty means the
	// system roots.
	TLSCAFile string
	// Timeouts are the outbound per-phase timeouts.
	Timeouts DeliveryTimeouts
	// TLSPolicy is the outbound TLS policy: DNS, DANE, MTA-STS, TLS-RPT.
	TLSPolicy TLSPolicy
}

// DeliveryTimeouts are the outbound timeouts (RFC 5321 §4.5.3.2).
type DeliveryTimeouts struct {
	// Connect bounds the TCP connect.
	Connect time.Duration
	// Greeting bounds the wait for the 220 greeting (§4.5.3.2.1).
	Greeting time.Duration
	// Mail bounds the reply to MAIL (§4.5.3.2.2).
	Mail time.Duration
	// Rcpt bounds each reply to RCPT (§4.5.3.2.3).
	Rcpt time.Duration
	// DataInit bounds the 354 reply to DATA (§4.5.3.2.4).
	DataInit time.Duration
	// DataBlock bounds each write of content (§4.5.3.2.5).
	DataBlock time.Duration
	// DataDone bounds the reply after the final dot (§4.5.3.2.6).
	DataDone time.Duration
}

// Route is the next hop and policy for one domain pattern.
type Route struct {
	// Domain is "example.com" (that domain), ".example.com" (its
	// subdomains) or "*" (every domain); lower case, A-labels.
	Domain string
	// NextHop is a next-hop spec (see route.ParseNextHops); empty means
	// Delivery.Smarthost, or MX lookup of the recipient domain.
	NextHop string
	// NextHops is NextHop parsed; nil when NextHop is empty.
	NextHops []route.NextHop
	// EightBit is PolicyConvert or PolicyBounce: what to do with 8-bit
	// content when the hop lacks 8BITMIME (RFC 6152 §3).
	EightBit string
	// DKIMSigned is PolicyConvert, PolicyBounce or PolicyARC: whether a
	// DKIM-signed message may be converted (RFC 6376 §5.3), and whether an
	// ARC set is added when it is.
	DKIMSigned string
	// DKIMKey names the [[dkim.key]] that signs mail on this
	// route; empty: the key of the From domain.
	DKIMKey string
	// TLS is TLSNone, TLSMay, TLSRequired, TLSDANE or TLSDANEOnly.
	TLS string
	// AuthUser is the SASL user for the hop; empty means no AUTH.
	AuthUser string
	// AuthPasswordFile is the file holding AuthUser's password.
	AuthPasswordFile string
	// EHLOName overrides Delivery.EHLOName for this route.
	EHLOName string
	// DiscardKeywords are EHLO keywords of the hop to ignore, upper case.
	DiscardKeywords []string
	// MaxConnections caps concurrent connections to this route's hops;
	// 0 means Queue.HopConcurrency.
	MaxConnections int
	// MaxMessagesPerConnection overrides Delivery.MaxMessagesPerConnection;
	// 0 means inherit.
	MaxMessagesPerConnection int
}

// Route policies for 8-bit and DKIM-signed content.
const (
	PolicyConvert = "convert"
	PolicyBounce  = "bounce"
)

// Route TLS policies.
const (
	TLSNone     = "none"
	TLSMay      = "may"
	TLSRequired = "required"
	// TLSDANE authenticates next hops by their DNSSEC-validated TLSA
	// records where they publish them, else is TLSMay (RFC 7672).
	TLSDANE = "dane"
	// TLSDANEOnly is TLSDANE without the fallback: mail waits (4.7.5).
	TLSDANEOnly = "dane-only"
)

// Log configures logging.
type Log struct {
	// Format is "text" or "json".
	Format string
	// Level is "debug", "info", "warn" or "error".
	Level string
	// File is the log file; empty means standard error.
	File string
}

// Admin configures the admin HTTP API (see admin.go for its defaults).
type Admin struct {
	// Address is "host:port", an absolute path for a Unix socket, AdminOff
	// to disable the API, or empty for the default: the Unix socket
	// AdminSocketName in the spool (see Config.AdminAddress).
	Address string
	// TokenFile holds the bearer token a TCP admin listener requires.
	TokenFile string
	// MetricsListen is an extra TCP "host:port" serving only /metrics and
	// /healthz, without a token; empty: none.
	MetricsListen string
}

// KnownKeywords returns the EHLO keywords Ferry can offer on a listener or
// discard from a next hop.
func KnownKeywords() []string {
	return []string{
		"8BITMIME", "PIPELINING", "SIZE", "DSN", "ENHANCEDSTATUSCODES", "SMTPUTF8",
		"CHUNKING", "BINARYMIME", "STARTTLS", "AUTH", "REQUIRETLS",
	}
}

// DefaultKeywords are the EHLO keywords a listener offers by default.
func DefaultKeywords() []string {
	return []string{"8BITMIME", "PIPELINING", "SIZE", "DSN", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "BINARYMIME"}
}

// DefaultListener returns a listener with every option at its default.
func DefaultListener() Listener {
	return Listener{
		Address:        "127.0.0.1:2525",
		Keywords:       DefaultKeywords(),
		MaxMessageSize: 50 * 1000 * 1000,
		MaxRecipients:  1000,
		BareNewline:    BareNormalize,
	}
}

// DefaultRoute returns a route with every option but Domain at its default.
func DefaultRoute() Route {
	return Route{
		EightBit:   PolicyConvert,
		DKIMSigned: PolicyConvert,
		TLS:        TLSMay,
	}
}

// EHLOName is the name delivery sends in EHLO/HELO: Delivery.EHLOName, or
// Hostname when that is empty. A route's own EHLOName, when set, overrides
// it.
func (c Config) EHLOName() string {
	if c.Delivery.EHLOName != "" {
		return c.Delivery.EHLOName
	}
	return c.Hostname
}

// Default returns the built-in configuration: what "ferry serve" runs with
// when no file is given. Hostname is os.Hostname(), or "localhost" when that
// fails.
func Default() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return Config{
		Hostname:  host,
		Listeners: []Listener{DefaultListener()},
		Relay:     Relay{Networks: access.DefaultRelayNetworks()},
		Limits: Limits{
			MaxConnections:      1000,
			MaxConnectionsPerIP: 50,
			MaxErrors:           20,
			MaxReceived:         100,
			ReservedConnections: 100,
			MaxAuthChecks:       4,
		},
		Timeouts: Timeouts{
			Greeting:      5 * time.Minute,
			Command:       5 * time.Minute,
			DataBlock:     3 * time.Minute,
			DataTotal:     30 * time.Minute,
			HelloPhase:    5 * time.Minute,
			EnvelopePhase: 10 * time.Minute,
			PregreetWait:  time.Second,
			AuthCheckWait: 10 * time.Second,
		},
		Queue: Queue{
			Spool:          "/var/spool/ferry",
			RetryInitial:   5 * time.Minute,
			RetryMax:       time.Hour,
			Lifetime:       5 * 24 * time.Hour,
			BounceLifetime: 24 * time.Hour,
			DelayWarning:   4 * time.Hour,
			HopConcurrency: 10,
			SegmentSize:    64 << 20,
			Backend:        BackendSegment,
			LeaseTimeout:   30 * time.Second,
		},
		Delivery: Delivery{
			Workers:                  20,
			MaxMessagesPerConnection: 100,
			IdleTimeout:              10 * time.Second,
			TLSPolicy:                DefaultTLSPolicy(),
			Timeouts: DeliveryTimeouts{
				Connect:   30 * time.Second,
				Greeting:  5 * time.Minute,
				Mail:      5 * time.Minute,
				Rcpt:      5 * time.Minute,
				DataInit:  2 * time.Minute,
				DataBlock: 3 * time.Minute,
				DataDone:  10 * time.Minute,
			},
		},
		Log:   Log{Format: "text", Level: "info"},
		Admin: Admin{},
		DSN:   DSN{MaxReturnSize: 100 << 10}, // dsn.DefaultMaxReturnSize
	}
}
