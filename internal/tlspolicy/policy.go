// Package tlspolicy decides how delivery protects the connection to each
// MX host of a recipient domain: DANE (RFC 7672, RFC 7671) when the MX
// host's DNS is DNSSEC-secure and publishes usable TLSA records, MTA-STS
// (RFC 8461) otherwise, and opportunistic STARTTLS (RFC 7435) when the
// domain publishes neither. For a route with configured next hops and
// tls = "dane" or "dane-only" it decides the DANE policy of each next hop
// the same way. It owns Ferry's DNS client (Resolver), which
// route uses for MX lookups so that the DNSSEC status of the MX RRset is
// known.
package tlspolicy

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/miekg/dns"
)

// Kind is the policy that applies to one MX host.
type Kind uint8

// Policy kinds, weakest first.
const (
	// Opportunistic: STARTTLS when offered, certificate not checked
	// (RFC 7435); a failed handshake falls back to plain text.
	Opportunistic Kind = iota
	// MTASTSTesting: as Opportunistic for delivery, but the certificate
	// is checked and failures are reported (RFC 8461 §5).
	MTASTSTesting
	// Encrypt: TLS is mandatory but not authenticated: the TLSA RRset is
	// secure and none of its records is usable (RFC 7672 §2.2).
	Encrypt
	// MTASTS: MTA-STS enforce: TLS mandatory, the certificate valid under
	// the PKIX roots for the MX host name (RFC 8461 §4.2, §5).
	MTASTS
	// DANE: TLS mandatory, the certificate must match a usable TLSA record
	// (RFC 7672 §3).
	DANE
)

// String returns the name used in logs, probe and explain output.
func (k Kind) String() string {
	switch k {
	case MTASTSTesting:
		return "mta-sts-testing"
	case Encrypt:
		return "encrypt"
	case MTASTS:
		return "mta-sts"
	case DANE:
		return "dane"
	default:
		return "opportunistic"
	}
}

// HostPolicy is the TLS policy for one MX host of a policy domain.
type HostPolicy struct {
	// Kind is the policy that applies.
	Kind Kind
	// Domain is the policy domain (the recipient domain).
	Domain string
	// Host is the MX host name.
	Host string
	// TLSA are the usable TLSA records for Kind DANE.
	TLSA []TLSA
	// RefNames are the names a certificate may carry (RFC 7672 §3.2.2:
	// the MX host name; RFC 8461 §4.1: the MX host name too).
	RefNames []string
	// Reason explains the decision in words, for logs, probe and explain.
	Reason string
	// Refuse, when set, says not to connect to this host at all; the
	// reply defers (TLSA lookup failure, an MX not in the MTA-STS policy).
	Refuse *smtp.Reply
	// STS is the domain's MTA-STS policy when one was found, also where
	// DANE took precedence over it.
	STS *STSPolicy
	// STSMismatch is set in testing mode when the host is not in the
	// policy's mx list (reported, not enforced).
	STSMismatch bool
	// Local is set when the policy is the relay's own rather than one the
	// recipient domain publishes: that of a route's configured next hop
	// (tls = "dane"), or a refusal by tls = "dane-only". TLS reports
	// (RFC 8460 §3: the recipient domain's policy) leave it out.
	Local bool
}

// Mandatory reports whether the host must not be used without TLS.
func (p HostPolicy) Mandatory() bool {
	return p.Kind == DANE || p.Kind == MTASTS || p.Kind == Encrypt
}

// Authenticated reports whether the policy authenticates the server, as
// REQUIRETLS needs (RFC 8689 §4.2.1: DANE or MTA-STS).
func (p HostPolicy) Authenticated() bool { return p.Kind == DANE || p.Kind == MTASTS }

// String formats the policy for logs: "dane (reason)".
func (p HostPolicy) String() string {
	if p.Reason == "" {
		return p.Kind.String()
	}
	return p.Kind.String() + " (" + p.Reason + ")"
}

// TLSConfig returns the client TLS configuration for the policy: for DANE
// the chain is checked against the TLSA records and nothing else, for
// MTA-STS against roots and the MX host name, for testing and encrypt
// nothing fails the handshake. onVerify, when not nil, gets the outcome of
// every check (nil for success), for TLS-RPT and the log.
func (p HostPolicy) TLSConfig(roots *x509.CertPool, now func() time.Time, onVerify func(error)) *tls.Config {
	cfg := &tls.Config{ServerName: p.Host, RootCAs: roots, MinVersion: tls.VersionTLS12,
		CipherSuites: smtp.CipherSuites()} // no CBC-SHA1 suites, as every Ferry TLS
	report := func(err error) error {
		if onVerify != nil {
			onVerify(err)
		}
		return err
	}
	switch p.Kind {
	case DANE:
		cfg.InsecureSkipVerify = true // replaced by the TLSA check (RFC 7672 §3.1)
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return report(VerifyDANE(cs.PeerCertificates, p.TLSA, p.RefNames, now()))
		}
	case MTASTS:
		cfg.InsecureSkipVerify = true // verified below, to name the failure
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return report(verifyPKIX(cs, p.Host, roots, now()))
		}
	case MTASTSTesting:
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			report(verifyPKIX(cs, p.Host, roots, now()))
			return nil // testing mode: report, deliver anyway (RFC 8461 §5)
		}
	default:
		cfg.InsecureSkipVerify = true // RFC 7435: opportunistic, unauthenticated
		cfg.VerifyConnection = func(tls.ConnectionState) error {
			return report(nil) // counted as a session (RFC 8460 §4.3)
		}
	}
	return cfg
}

// verifyPKIX checks the server's chain against roots for host.
func verifyPKIX(cs tls.ConnectionState, host string, roots *x509.CertPool, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("MTA-STS: %s sent no certificate", host)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName: host, Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("MTA-STS: certificate of %s: %w", host, err)
	}
	return nil
}

// ReplyDANE returns the reply for a DANE failure (RFC 7672 §2.2: defer);
// the text names the record or the failed lookup.
func ReplyDANE(text string) smtp.Reply {
	return smtp.NewReply(451, "4.7.5", text)
}

// Engine decides the policy of MX hosts. Build it with NewEngine.
type Engine struct {
	r   *Resolver
	sts *STS
	log *slog.Logger
	now func() time.Time
	out outcomes
}

// EngineConfig configures an Engine.
type EngineConfig struct {
	// Resolver is the DNS client; required.
	Resolver *Resolver
	// STS is the MTA-STS policy source; nil: no MTA-STS.
	STS *STS
	// Logger receives policy log lines; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// NewEngine returns an Engine. Without a validating resolver it logs,
// once, that DANE is off and why.
func NewEngine(cfg EngineConfig) *Engine {
	e := &Engine{r: cfg.Resolver, sts: cfg.STS, log: cfg.Logger, now: cfg.Now}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if !e.r.DNSSEC() {
		e.log.Warn("tlspolicy: DANE is off: no validating resolver is configured ([delivery] dnssec_resolver), so no DNS answer can be known to be DNSSEC-secure")
	}
	return e
}

// Resolver returns the engine's DNS client.
func (e *Engine) Resolver() *Resolver { return e.r }

// Now returns the engine's clock reading.
func (e *Engine) Now() time.Time { return e.now() }

// ForTargets returns the policy of each target of a delivery to domain,
// looking up each MX host's TLSA records once.
func (e *Engine) ForTargets(ctx context.Context, domain string, targets []route.Target) []HostPolicy {
	out := make([]HostPolicy, len(targets))
	byHost := map[string]HostPolicy{}
	var sts *stsResult
	for i, t := range targets {
		if p, ok := byHost[t.Host]; ok {
			out[i] = p
			continue
		}
		p, ok := e.dane(ctx, domain, t)
		if !ok {
			if sts == nil {
				r := e.stsPolicy(ctx, domain)
				sts = &r
			}
			p = sts.forHost(domain, t.Host, p)
		}
		byHost[t.Host] = p
		out[i] = p
	}
	return out
}

// dane returns the DANE policy of t, an MX host of a direct delivery to
// domain, and false when DANE does not apply (the returned policy then
// says why, for the log).
func (e *Engine) dane(ctx context.Context, domain string, t route.Target) (HostPolicy, bool) {
	if !t.MX && e.r.DNSSEC() {
		return HostPolicy{Domain: domain, Host: t.Host, RefNames: []string{t.Host}, Reason: "not an MX host"}, false
	}
	return e.daneAt(ctx, domain, t, route.DefaultPort) // RFC 7672 §2.2.3: port 25 at MX hosts
}

// daneAt returns the DANE policy of t with its TLSA records at
// _port._tcp.HOST (RFC 7672 §2.2.3), and false when DANE does not apply.
// A host found by an MX lookup needs a secure MX RRset (RFC 7672 §2.2.1);
// a configured next hop's name is trusted as the configuration is (RFC
// 7672 §2.2.2). Either way the host's address records must be secure.
func (e *Engine) daneAt(ctx context.Context, domain string, t route.Target, port int) (HostPolicy, bool) {
	p := HostPolicy{Domain: domain, Host: t.Host, RefNames: []string{t.Host}}
	_, ipErr := netip.ParseAddr(t.Host)
	switch {
	case !e.r.DNSSEC():
		p.Reason = "DANE off: no validating resolver"
		return p, false
	case ipErr == nil:
		p.Reason = t.Host + " is an IP address: no name to find TLSA records at"
		return p, false
	case t.MX && !t.MXSecure:
		p.Reason = "MX records of " + cmp.Or(t.MXDomain, domain) + " are not DNSSEC-signed"
		return p, false
	case !t.AddrSecure:
		p.Reason = "address records of " + t.Host + " are not DNSSEC-signed" // RFC 7672 §2.2.2
		return p, false
	}
	// RFC 7672 §2.2.2: when the host name is a secure CNAME, the TLSA base
	// domain is the expanded name first, then the original one; both are
	// reference identifiers.
	bases := []string{dns.Fqdn(t.Host)}
	qtype := dns.TypeA
	if t.IP.Is6() {
		qtype = dns.TypeAAAA
	}
	if ad, err := e.r.Query(ctx, t.Host, qtype, true); err == nil && ad.Secure && !strings.EqualFold(ad.Name, bases[0]) {
		bases = []string{ad.Name, bases[0]}
		p.RefNames = append(p.RefNames, strings.TrimSuffix(ad.Name, "."))
	}
	var a Answer
	var owner string
	var err error
	for i, base := range bases {
		owner = "_" + strconv.Itoa(port) + "._tcp." + base
		a, err = e.r.Query(ctx, owner, dns.TypeTLSA, true)
		if i+1 < len(bases) && isNotFound(err) && a.Secure {
			continue // none at the expanded name: try the original
		}
		break
	}
	if err != nil {
		if isNotFound(err) {
			if a.Secure {
				p.Reason = "no TLSA records at " + owner
			} else {
				p.Reason = "TLSA denial at " + owner + " is not secure"
			}
			return p, false
		}
		// RFC 7672 §2.2: a failed TLSA lookup for a secure host defers.
		rep := ReplyDANE("DANE: TLSA lookup for " + owner + " failed: " + shortDNSErr(err))
		p.Kind, p.Refuse, p.Reason = DANE, &rep, "TLSA lookup failed"
		return p, true
	}
	if !a.Secure {
		p.Reason = "TLSA records at " + owner + " are not DNSSEC-signed"
		return p, false
	}
	for _, r := range tlsaOf(a.RRs) {
		if r.usable() {
			p.TLSA = append(p.TLSA, r)
		}
	}
	if len(p.TLSA) == 0 {
		// RFC 7672 §2.2: TLS stays mandatory, unauthenticated; other
		// policies may still authenticate.
		p.Kind, p.Reason = Encrypt, "TLSA records at "+owner+" are all unusable (usage 0/1 or unknown parameters)"
		return p, false
	}
	p.Kind = DANE
	p.Reason = fmt.Sprintf("%d usable TLSA record(s) at %s", len(p.TLSA), owner)
	if len(bases) > 1 {
		p.Reason += " (" + t.Host + " is a CNAME for " + strings.TrimSuffix(bases[0], ".") + ")"
	}
	if !strings.EqualFold(a.Name, dns.Fqdn(owner)) {
		p.Reason += " (via CNAME " + a.Name + ")"
	}
	return p, true
}

// shortDNSErr is a DNS error without the wrapping.
func shortDNSErr(err error) string {
	if de, ok := err.(*net.DNSError); ok {
		return de.Err
	}
	return err.Error()
}
