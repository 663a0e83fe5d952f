package config

import (
	"github.com/ferrymta/ferry/internal/access"
	"github.com/ferrymta/ferry/internal/auth"

	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Expected forms of the relay options.
const (
	wantNetworks    = `a list of networks like "192.0.2.0/24", "2001:db8::/32" or "192.0.2.7"`
	wantAcceptDoms  = `a list of domains like "example.com" or ".example.com" (its subdomains)`
	wantSenderUsers = `a list of user names (as in the auth_users_file)`
	wantRate        = `a rate like "100/1m" (messages per duration) or "" (no limit)`
)

// ParseRate parses a message rate "N/DURATION" ("100/1m", "1000/1d"): at
// most N messages in any DURATION (see access.RateLimit). The empty string
// is no limit, the zero RateLimit.
func ParseRate(s string) (access.RateLimit, error) {
	r, err := parseRate(s)
	if err != nil {
		return r, fmt.Errorf("rate %q: %w", s, err)
	}
	return r, nil
}

// parseRate is ParseRate with errors that do not repeat s.
func parseRate(s string) (access.RateLimit, error) {
	if s == "" {
		return access.RateLimit{}, nil
	}
	n, dur, ok := strings.Cut(s, "/")
	if !ok {
		return access.RateLimit{}, errors.New("no '/' between messages and duration")
	}
	msgs, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || msgs < 1 {
		return access.RateLimit{}, fmt.Errorf("%q is not a whole number of messages of at least 1", n)
	}
	interval, err := ParseDuration(dur)
	if err != nil || interval/time.Duration(msgs) <= 0 {
		return access.RateLimit{}, fmt.Errorf("%q is not a positive duration", dur)
	}
	return access.RateLimit{Messages: msgs, Interval: interval}, nil
}

// FormatRate formats a rate so that ParseRate gives it back; the zero
// RateLimit (no limit) is "".
func FormatRate(r access.RateLimit) string {
	if r.Messages == 0 {
		return ""
	}
	return strconv.Itoa(r.Messages) + "/" + FormatDuration(r.Interval)
}

// checkNetwork parses one relay network; the error leaves out what the
// caller's message already says.
func checkNetwork(s string) (netip.Prefix, error) {
	p, err := access.ParseNetwork(s)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), access.ErrBadNetwork.Error()+" "+strconv.Quote(s)+": ")
		return p, errors.New(msg)
	}
	return p, nil
}

// checkAcceptDomain normalizes an accepted domain; a leading dot (the
// subdomains) is kept.
func checkAcceptDomain(s string) (string, error) {
	name, dot := s, ""
	if strings.HasPrefix(s, ".") {
		name, dot = s[1:], "."
	}
	if strings.HasPrefix(name, "*.") {
		return "", fmt.Errorf("write %q to match subdomains", name[1:])
	}
	d, err := access.NormalizeDomain(name)
	if err != nil {
		return "", errors.New(strings.TrimPrefix(err.Error(), access.ErrBadDomain.Error()+": "))
	}
	return dot + d, nil
}

// boolean stores true or false.
func (d *decoder) boolean(dst *bool) field {
	return func(v any, path string) {
		b, ok := v.(bool)
		if !ok {
			d.wrong(path, "true or false", v)
			return
		}
		*dst = b
	}
}

// strList stores a list of strings, each passed through check (which may
// normalize it); an empty list is stored as nil unless keepEmpty.
func (d *decoder) strList(dst *[]string, want string, keepEmpty bool, check func(string) (string, error)) field {
	return func(v any, path string) {
		list, ok := v.([]any)
		if !ok {
			d.wrong(path, want, v)
			return
		}
		out := make([]string, 0, len(list))
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				d.wrong(path, want, e)
				return
			}
			norm, err := check(s)
			if err != nil {
				d.errf(path, "want %s, got %q (%v)", want, s, err)
				return
			}
			out = append(out, norm)
		}
		if len(out) == 0 && !keepEmpty {
			out = nil
		}
		*dst = out
	}
}

// networks stores a list of networks (access.ParseNetwork); an empty list
// is stored as nil unless keepEmpty.
func (d *decoder) networks(dst *[]netip.Prefix, keepEmpty bool) field {
	return func(v any, path string) {
		var strs []string
		d.strList(&strs, wantNetworks, true, func(s string) (string, error) {
			_, err := checkNetwork(s)
			return s, err
		})(v, path)
		if strs == nil {
			return // wrong; already reported
		}
		out := make([]netip.Prefix, len(strs))
		for i, s := range strs {
			out[i], _ = checkNetwork(s)
		}
		if len(out) == 0 && !keepEmpty {
			out = nil
		}
		*dst = out
	}
}

// rate stores a message rate (ParseRate).
func (d *decoder) rate(dst *access.RateLimit) field {
	return func(v any, path string) {
		s, ok := v.(string)
		if !ok {
			d.wrong(path, wantRate, v)
			return
		}
		r, err := parseRate(s)
		if err != nil {
			d.errf(path, "want %s, got %q (%v)", wantRate, s, err)
			return
		}
		*dst = r
	}
}

// relay decodes the [relay] table.
func (d *decoder) relay(v any, path string, r *Relay) {
	d.table(v, path, map[string]field{
		"networks":       d.networks(&r.Networks, true),
		"accept_domains": d.strList(&r.AcceptDomains, wantAcceptDoms, false, checkAcceptDomain),
		"sender_rule": func(v any, path string) {
			ts, ok := d.tables(v, path)
			if !ok {
				return
			}
			r.SenderRules = nil
			for i, t := range ts {
				var rule access.SenderRule
				p, errs := fmt.Sprintf("%s[%d]", path, i), len(d.errs)
				d.table(t, p, map[string]field{
					"networks": d.networks(&rule.Networks, false),
					"users":    d.strList(&rule.Users, wantSenderUsers, false, checkUser),
					"domains":  d.strList(&rule.Domains, wantAcceptDoms, false, checkAcceptDomain),
				})
				if len(d.errs) == errs {
					d.senderRuleChecks(p, rule)
				}
				r.SenderRules = append(r.SenderRules, rule)
			}
		},
		"rate": func(v any, path string) {
			d.table(v, path, map[string]field{
				"per_ip":   d.rate(&r.PerIP),
				"per_user": d.rate(&r.PerUser),
			})
		},
	})
}

func checkUser(s string) (string, error) {
	if err := auth.CheckUserName(s); err != nil {
		return "", err
	}
	return s, nil
}

// senderRuleChecks validates a [[relay.sender_rule]] that decoded without
// errors; p is its path.
func (d *decoder) senderRuleChecks(p string, rule access.SenderRule) {
	if len(rule.Networks) == 0 && len(rule.Users) == 0 {
		d.errf(p, "want networks or users to say whom the rule applies to, got neither")
	}
	if len(rule.Domains) == 0 {
		d.errf(p+".domains", "want at least one sender domain, got none")
	}
}

// listenerSecurity validates the TLS and AUTH options of a listener that
// decoded without errors; p is its path ("listener[0]").
func (d *decoder) listenerSecurity(p string, l Listener) {
	switch {
	case l.TLSCert != "" && l.TLSKey == "":
		d.errf(p+".tls_cert", "want tls_cert and tls_key together, got no tls_key")
	case l.TLSCert == "" && l.TLSKey != "":
		d.errf(p+".tls_key", "want tls_cert and tls_key together, got no tls_cert")
	}
	if l.RequireTLS && l.TLSCert == "" {
		d.errf(p+".require_tls", "want tls_cert and tls_key with require_tls, got no certificate")
	}
	if l.ImplicitTLS && l.TLSCert == "" {
		d.errf(p+".implicit_tls", "want tls_cert and tls_key with implicit_tls, got no certificate")
	}
	if l.AuthUsersFile != "" && l.TLSCert == "" && !l.AllowInsecureAuth {
		d.errf(p+".auth_users_file", "want tls_cert (AUTH is offered only over TLS) or allow_insecure_auth = true with auth_users_file, got neither")
	}
}
