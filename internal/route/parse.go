package route

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"

	"github.com/ferrymta/ferry/internal/smtp"
)

// ParseNextHop parses one next hop: "host" or "host:port" (MX lookup on
// host), "[host]" or "[host]:port" (no MX lookup, the Postfix convention).
// An IP address never gets an MX lookup; an IPv6 address must be bracketed,
// optionally with Postfix's "ipv6:" prefix ("[ipv6:2001:db8::1]:25"). The
// port must be numeric and defaults to 25. Host names are lower-cased and
// lose a trailing dot.
func ParseNextHop(s string) (NextHop, error) {
	s = strings.TrimSpace(s)
	h, err := parseNextHop(s)
	if err != nil {
		return NextHop{}, fmt.Errorf("next hop %q: %w", s, err)
	}
	return h, nil
}

func parseNextHop(s string) (NextHop, error) {
	if s == "" {
		return NextHop{}, errors.New("empty next hop")
	}
	h := NextHop{Port: DefaultPort}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return NextHop{}, errors.New("missing ']'")
		}
		host, h.NoMX = s[1:end], true
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return NextHop{}, fmt.Errorf("unexpected %q after ']'", rest)
			}
			if port = rest[1:]; port == "" {
				return NextHop{}, errors.New("empty port")
			}
		}
		if len(host) > 5 && strings.EqualFold(host[:5], "ipv6:") {
			host = host[5:]
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return NextHop{}, errors.New("write an IPv6 address in brackets, e.g. [2001:db8::1]:25")
		}
		if port == "" {
			return NextHop{}, errors.New("empty port")
		}
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return NextHop{}, fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		h.Port = p
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return NextHop{}, errors.New("address zones are not supported")
		}
		h.Host, h.NoMX = ip.String(), true
		return h, nil
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return NextHop{}, errors.New("empty host")
	}
	a, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return NextHop{}, fmt.Errorf("host name: %w", err)
	}
	host = a
	if err := checkDomain(host); err != nil {
		return NextHop{}, err
	}
	h.Host = host
	return h, nil
}

// ParseNextHops parses a comma-separated list of next hops tried in order.
func ParseNextHops(s string) ([]NextHop, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty next hop")
	}
	var hops []NextHop
	for _, part := range strings.Split(s, ",") {
		h, err := ParseNextHop(part)
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
	}
	return hops, nil
}

// ParseRouteFlag parses the quick set-up form of a route given on the
// command line:
//
//	PATTERN=NEXTHOP[,NEXTHOP...][;KEY=VALUE...]
//
// for example "company.example=[127.0.0.1]:2526" or
// "*=[smarthost.example]:587;tls=required;auth=user:secret". PATTERN is a
// domain, ".domain" for its subdomains or "*". NEXTHOP "direct" means MX
// delivery to the recipient domain. Keys: eightbit (convert|bounce), dkim
// (convert|bounce|arc), dkimkey (a key reference), tls (none|may|required|dane|dane-only), ehlo (a name), discard
// (keywords separated by spaces or "+"), auth (user:password), conns and
// msgs (positive integers).
func ParseRouteFlag(s string) (Route, error) {
	spec, opts, _ := strings.Cut(s, ";")
	pattern, hops, ok := strings.Cut(spec, "=")
	if !ok {
		return Route{}, fmt.Errorf("route %q: want PATTERN=NEXTHOP, e.g. company.example=[127.0.0.1]:2526", s)
	}
	r := Route{Pattern: strings.ToLower(strings.TrimSpace(pattern))}
	if r.Pattern == "" {
		return Route{}, fmt.Errorf("route %q: empty pattern", s)
	}
	if r.Pattern != "*" {
		if err := checkDomain(smtp.DomainKey(strings.TrimPrefix(r.Pattern, "."))); err != nil {
			return Route{}, fmt.Errorf("route %q: %w", s, err)
		}
	}
	if strings.TrimSpace(hops) != "direct" {
		h, err := ParseNextHops(hops)
		if err != nil {
			return Route{}, fmt.Errorf("route %q: %w", s, err)
		}
		r.Hops = h
	}
	if opts != "" {
		for _, kv := range strings.Split(opts, ";") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return Route{}, fmt.Errorf("route %q: option %q: want KEY=VALUE", s, kv)
			}
			if err := SetPolicyOption(&r.Policy, strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
				return Route{}, fmt.Errorf("route %q: %w", s, err)
			}
		}
	}
	return r, nil
}

// SetPolicyOption sets one policy field by its short name, as used in
// ParseRouteFlag (and usable by a configuration loader).
func SetPolicyOption(p *Policy, key, value string) error {
	var err error
	key = strings.ToLower(key)
	switch key {
	case "eightbit", "8bit":
		p.EightBit, err = ParseAction(value)
	case "dkim", "dkimsigned":
		p.DKIMSigned, err = ParseDKIMAction(value)
	case "dkimkey":
		if value == "" {
			return fmt.Errorf("option dkimkey: want a key's domain or selector._domainkey.domain")
		}
		p.DKIMKey = value
	case "tls":
		p.TLS, err = ParseTLSMode(value)
	case "ehlo":
		if value == "" || strings.ContainsAny(value, " \t\r\n") {
			return fmt.Errorf("option ehlo: %q is not a host name", value)
		}
		p.EHLOName = value
	case "discard":
		p.DiscardKeywords = nil
		for _, k := range strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == '+' || r == ',' }) {
			p.DiscardKeywords = append(p.DiscardKeywords, strings.ToUpper(k))
		}
	case "auth":
		user, pass, ok := strings.Cut(value, ":")
		if !ok || user == "" {
			return fmt.Errorf("option auth: want user:password")
		}
		p.Auth = &Credentials{Username: user, Password: pass}
	case "conns", "msgs":
		n, perr := strconv.Atoi(value)
		if perr != nil || n <= 0 {
			return fmt.Errorf("option %s: want a positive integer, got %q", key, value)
		}
		if key == "conns" {
			p.MaxConnections = n
		} else {
			p.MaxMessagesPerConnection = n
		}
	default:
		return fmt.Errorf("unknown option %q (want eightbit, dkim, dkimkey, tls, ehlo, discard, auth, conns or msgs)", key)
	}
	if err != nil {
		return fmt.Errorf("option %s: %w", key, err)
	}
	return nil
}

// ParseAction parses "convert" or "bounce".
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(s) {
	case "convert":
		return Convert, nil
	case "bounce":
		return Bounce, nil
	}
	return Convert, fmt.Errorf("%q is not convert or bounce", s)
}

// ParseDKIMAction parses "convert", "bounce" or "arc": the actions for
// DKIM-signed mail that must be converted.
func ParseDKIMAction(s string) (Action, error) {
	if strings.EqualFold(s, "arc") {
		return ARC, nil
	}
	a, err := ParseAction(s)
	if err != nil {
		return a, fmt.Errorf("%q is not convert, bounce or arc", s)
	}
	return a, nil
}

// ParseTLSMode parses "none", "may", "required", "dane" or "dane-only".
func ParseTLSMode(s string) (TLSMode, error) {
	switch strings.ToLower(s) {
	case "none":
		return TLSNone, nil
	case "may":
		return TLSMay, nil
	case "required":
		return TLSRequired, nil
	case "dane":
		return TLSDANE, nil
	case "dane-only":
		return TLSDANEOnly, nil
	}
	return TLSMay, fmt.Errorf("%q is not none, may, required, dane or dane-only", s)
}
