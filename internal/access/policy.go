package access

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Config is the relay access configuration. The zero Config is valid: only
// loopback clients and authenticated users may relay, no domain is accepted
// from anyone else, no sender rules, no rate limits. (The recipient limit
// per transaction is the listener's, smtpd.Config.MaxRecipients.)
type Config struct {
	// RelayNetworks are the client networks allowed to relay to any
	// domain (Postfix's mynetworks). Nil means DefaultRelayNetworks
	// (loopback only); a non-nil empty slice means no network may relay,
	// so only authenticated users can. Configured networks replace the
	// default; they do not add to it.
	RelayNetworks []netip.Prefix
	// AcceptDomains are the domains any client, authenticated or not, may
	// send to (inbound gateway use; Postfix's relay_domains). An entry
	// matches that name only; an entry with a leading dot (".example.com")
	// matches its subdomains and not itself. Unicode and A-label forms are
	// equivalent (NormalizeDomain). Address literals are not allowed.
	AcceptDomains []string
	// SenderRules restrict the reverse-path domains that matching clients
	// may use in MAIL FROM; see SenderRule.
	SenderRules []SenderRule
	// Rate holds the message rate limits; the zero value sets none.
	Rate RateConfig
}

// SenderRule says which reverse-path domains a group of clients may use, so
// a relay client cannot send as any domain it likes. A rule applies to a
// client whose address is in Networks or whose authenticated user name is in
// Users (compared exactly). When one or more rules apply, MAIL FROM must
// name a domain of one of them; when none applies, any sender is allowed.
// The null reverse path "<>" is always allowed: delivery status
// notifications must be able to pass (RFC 5321 §4.5.5).
type SenderRule struct {
	// Networks are client networks the rule applies to.
	Networks []netip.Prefix
	// Users are authenticated user names the rule applies to.
	Users []string
	// Domains are the allowed sender domains, matched as AcceptDomains
	// entries are (".example.com" for subdomains).
	Domains []string
}

// Client is what the access policy knows of an SMTP client.
type Client struct {
	// IP is the client's address; an IPv4-mapped IPv6 address counts as
	// IPv4 and a zone is ignored. The zero Addr belongs to no network.
	IP netip.Addr
	// User is the authenticated user name (RFC 4954), "" when the client
	// has not authenticated.
	User string
	// TLS is set when the session runs over TLS. No rule depends on it
	// yet; it is named in Decision.Reason.
	TLS bool
}

// Decision is the verdict on one command.
type Decision struct {
	// Allow is set when the command may proceed.
	Allow bool
	// Reply is the reply to send when Allow is false: 5xx for a refusal
	// that retrying will not change, 4xx for a limit. Zero when allowed.
	Reply smtp.Reply
	// Reason says why, for the log (never sent to the client).
	Reason string
	// Domain is the normalized domain the decision was made on
	// (NormalizeDomain), or the address literal in canonical form
	// ("[192.0.2.1]", "[IPv6:2001:db8::1]"), or "" when the path has no
	// domain or the domain was invalid. Route on this form, so the
	// domain delivered to is the one that was decided on.
	Domain string
}

// Policy makes relay decisions. Rcpt and Mail are pure functions of the
// configuration and their arguments; AllowMessage consults the rate limiter,
// the only state. A Policy is safe for concurrent use.
type Policy struct {
	relay   netSet
	accept  domainSet
	senders []senderRule
	limiter *RateLimiter // nil when no rate limit is set
}

// senderRule is a validated SenderRule.
type senderRule struct {
	networks netSet
	users    map[string]struct{}
	domains  domainSet
}

// New validates cfg and returns the policy. Errors name the offending field
// and entry.
func New(cfg Config) (*Policy, error) {
	relayNets := cfg.RelayNetworks
	if relayNets == nil {
		relayNets = DefaultRelayNetworks()
	}
	relay, err := newNetSet("relay_networks", relayNets)
	if err != nil {
		return nil, withPrefix(err)
	}
	accept, err := newDomainSet("accept_domains", cfg.AcceptDomains)
	if err != nil {
		return nil, withPrefix(err)
	}
	p := &Policy{relay: relay, accept: accept}
	for i, r := range cfg.SenderRules {
		what := fmt.Sprintf("sender_rules[%d]", i)
		if len(r.Networks) == 0 && len(r.Users) == 0 {
			return nil, fmt.Errorf("access: %s: needs networks or users", what)
		}
		if len(r.Domains) == 0 {
			return nil, fmt.Errorf("access: %s: needs at least one domain", what)
		}
		nets, err := newNetSet(what+".networks", r.Networks)
		if err != nil {
			return nil, withPrefix(err)
		}
		doms, err := newDomainSet(what+".domains", r.Domains)
		if err != nil {
			return nil, withPrefix(err)
		}
		users := make(map[string]struct{}, len(r.Users))
		for j, u := range r.Users {
			if u == "" {
				return nil, fmt.Errorf("access: %s.users[%d]: empty user name", what, j)
			}
			users[u] = struct{}{}
		}
		p.senders = append(p.senders, senderRule{networks: nets, users: users, domains: doms})
	}
	if err := cfg.Rate.validate(); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	if cfg.Rate.enabled() {
		l, err := NewRateLimiter(cfg.Rate)
		if err != nil {
			return nil, fmt.Errorf("access: %w", err)
		}
		p.limiter = l
	}
	return p, nil
}

// IsPostmaster reports whether a forward path is the bare "<Postmaster>"
// (any case, no domain) that RFC 5321 §4.1.1.3 requires every server to
// accept. It names the postmaster of this relay; the caller routes it to the
// configured postmaster address.
func IsPostmaster(p smtp.Path) bool {
	return p.Domain == "" && strings.EqualFold(p.LocalPart, "postmaster")
}

// relayReason reports whether the client may relay to any domain, and why.
func (p *Policy) relayReason(c Client) (string, bool) {
	if c.User != "" {
		return fmt.Sprintf("authenticated user %q%s", c.User, tlsNote(c)), true
	}
	if n, ok := p.relay.match(clientAddr(c.IP)); ok {
		return fmt.Sprintf("client %s in relay network %s%s", c.IP, n, tlsNote(c)), true
	}
	return "", false
}

// InRelayNetworks reports whether ip is in one of the relay networks: a
// trusted client, for which the server also keeps reserved connections.
func (p *Policy) InRelayNetworks(ip netip.Addr) bool {
	_, ok := p.relay.match(clientAddr(ip))
	return ok
}

// tlsNote returns " over TLS" for a TLS session, for reasons.
func tlsNote(c Client) string {
	if c.TLS {
		return " over TLS"
	}
	return ""
}

// Rcpt decides whether RCPT TO:<rcpt> is accepted from the client.
//
// In order:
//   - "<Postmaster>" without a domain is accepted from anyone (RFC 5321
//     §4.1.1.3); the caller delivers it to the relay's postmaster.
//   - A path with no deliverable mailbox (null path, empty local part,
//     missing or invalid domain, a control character in the local part, a
//     general or malformed address literal) gets 501 5.1.3, whoever asks.
//   - A client in RelayNetworks or an authenticated user may relay to any
//     valid domain or IPv4/IPv6 address literal.
//   - Any other client may send only to an AcceptDomains domain, and only
//     with a local part free of '%', '!' and '@'. Those characters are the
//     percent hack, bang paths and embedded routes (RFC 5321 §3.6.1 and
//     Appendix C, RFC 1123 §5.2.16); a next hop may still interpret them
//     and relay onward, so an outside client could use an accepted domain
//     to reach a third party. They are refused whether quoted or not (the
//     path holds the unquoted local part). Address literals, even of our
//     own addresses, are never accepted from outside clients: Ferry has no
//     local mailboxes. Everything else gets 554 5.7.1 (RFC 5321 §3.6.2,
//     §7.1).
//
// The domain is decided on in normalized form (NormalizeDomain), so case,
// a trailing dot and Unicode versus A-label spellings do not matter, and a
// suffix of a name is a different name ("company.example.evil" is not
// "company.example").
func (p *Policy) Rcpt(c Client, rcpt smtp.Path) Decision {
	if IsPostmaster(rcpt) {
		return Decision{Allow: true, Reason: "postmaster of this relay (RFC 5321 §4.1.1.3)"}
	}
	bad := func(why string) Decision {
		return Decision{Reply: ReplyBadRecipient(), Reason: why}
	}
	switch {
	case rcpt.IsNull():
		return bad("null forward path")
	case rcpt.LocalPart == "":
		return bad("empty local part")
	case rcpt.Domain == "":
		return bad("forward path without a domain")
	case hasControl(rcpt.LocalPart):
		return bad("control character in local part")
	}
	var domain string
	literal := strings.HasPrefix(rcpt.Domain, "[")
	if literal {
		ip, err := ParseAddressLiteral(rcpt.Domain)
		if err != nil {
			return bad(err.Error())
		}
		domain = literalString(ip)
	} else {
		n, err := NormalizeDomain(rcpt.Domain)
		if err != nil {
			return bad(err.Error())
		}
		domain = n
	}
	if why, ok := p.relayReason(c); ok {
		return Decision{Allow: true, Reason: why, Domain: domain}
	}
	deny := func(why string) Decision {
		return Decision{Reply: ReplyRelayDenied(), Reason: fmt.Sprintf("client %s: %s", c.IP, why), Domain: domain}
	}
	switch {
	case literal:
		return deny("address literal " + domain + " from a client that may not relay")
	case !p.accept.match(domain):
		return deny("domain " + domain + " is not an accepted domain")
	case strings.ContainsAny(rcpt.LocalPart, "%!@"):
		return deny("local part with '%', '!' or '@' (source-routing hack, RFC 5321 §3.6.1) to accepted domain " + domain)
	}
	return Decision{Allow: true, Reason: "accepted domain " + domain, Domain: domain}
}

// literalString formats an address literal canonically.
func literalString(ip netip.Addr) string {
	if ip.Is4() {
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.String() + "]"
}

// hasControl reports whether s holds an ASCII control character or DEL, which
// no SMTP local part may carry (RFC 5321 §4.1.2 qtextSMTP and
// quoted-pairSMTP exclude them).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// Mail decides whether MAIL FROM:<from> is accepted from the client under the
// sender rules (see SenderRule). A refusal is 553 5.7.1.
func (p *Policy) Mail(c Client, from smtp.Path) Decision {
	if from.IsNull() {
		return Decision{Allow: true, Reason: "null reverse path"}
	}
	ip := clientAddr(c.IP)
	var rules []int
	for i, r := range p.senders {
		_, inNet := r.networks.match(ip)
		_, isUser := r.users[c.User]
		if inNet || (c.User != "" && isUser) {
			rules = append(rules, i)
		}
	}
	if len(rules) == 0 {
		return Decision{Allow: true, Reason: "no sender rule for this client"}
	}
	deny := func(domain, why string) Decision {
		return Decision{Reply: ReplySenderDenied(), Reason: fmt.Sprintf("client %s user %q: %s", c.IP, c.User, why), Domain: domain}
	}
	if from.Domain == "" || strings.HasPrefix(from.Domain, "[") {
		return deny("", fmt.Sprintf("sender %q has no domain name", from.Domain))
	}
	domain, err := NormalizeDomain(from.Domain)
	if err != nil {
		return deny("", err.Error())
	}
	for _, i := range rules {
		if p.senders[i].domains.match(domain) {
			return Decision{Allow: true, Reason: fmt.Sprintf("sender domain %s allowed by sender_rules[%d]", domain, i), Domain: domain}
		}
	}
	return deny(domain, fmt.Sprintf("sender domain %s not allowed by sender_rules%v", domain, rules))
}

// AllowMessage decides whether the client may send one more message now
// under the rate limits, and counts it when so. Call it once per message,
// when the client is about to send the content (at DATA, or at the first
// BDAT), so that a transaction that never gets a recipient, or is abandoned
// before its content, does not count. Without rate limits it always allows.
// A refusal is 450 4.7.1, a transient reply: the client tries the whole
// message again later (RFC 5321 §4.2.1).
func (p *Policy) AllowMessage(c Client, now time.Time) Decision {
	if p.limiter == nil {
		return Decision{Allow: true, Reason: "no rate limit"}
	}
	return p.limiter.Allow(c, now)
}

// withPrefix gives err the package's "access: " prefix unless it carries
// it already (ErrBadNetwork does), so the prefix is printed once.
func withPrefix(err error) error {
	if strings.Contains(err.Error(), "access: ") {
		return err
	}
	return fmt.Errorf("access: %w", err)
}
