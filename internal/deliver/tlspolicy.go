package deliver

import (
	"context"
	"fmt"

	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/tlspolicy"
)

// This file holds the outbound TLS policy glue: asking the policy source
// for each MX host's (or DANE next hop's) policy before dialing,
// REQUIRETLS (RFC 8689) and TLS-Required: No (RFC 8689 §5).

// TLSPolicy is what delivery needs of internal/tlspolicy.
type TLSPolicy interface {
	// ForTargets returns the policy of each target of a delivery to the
	// recipient domain domain, in the same order.
	ForTargets(ctx context.Context, domain string, targets []route.Target) []tlspolicy.HostPolicy
	// ForNextHops returns the DANE policy of each target of a route with
	// configured next hops and tls = "dane" or "dane-only", in the same
	// order; domain is the recipient domain.
	ForNextHops(ctx context.Context, domain string, targets []route.Target) []tlspolicy.HostPolicy
	// Outcome records the result of one policy check (nil: success), for
	// TLS reporting (RFC 8460).
	Outcome(p tlspolicy.HostPolicy, t route.Target, err error)
}

// policies returns the TLS policies of the targets and logs them: DANE and
// MTA-STS for a direct delivery, DANE for a route with configured next
// hops and tls = "dane" or "dane-only" (which also refuses every host DANE
// does not authenticate); nil for other routes with configured next hops
// (their route's tls setting applies) or without a policy source.
func (a *Agent) policies(ctx context.Context, rt route.Route, domain string, targets []route.Target) []tlspolicy.HostPolicy {
	mode := rt.Policy.TLS
	if len(targets) == 0 {
		return nil
	}
	var pols []tlspolicy.HostPolicy
	switch {
	case a.cfg.TLSPolicy == nil && mode == route.TLSDANEOnly:
		pols = make([]tlspolicy.HostPolicy, len(targets))
		for i, t := range targets {
			pols[i] = tlspolicy.HostPolicy{Domain: domain, Host: t.Host, Reason: "no TLS policy source"}
		}
	case a.cfg.TLSPolicy == nil:
		return nil
	case rt.Direct():
		pols = a.cfg.TLSPolicy.ForTargets(ctx, domain, targets)
	case mode.DANE():
		pols = a.cfg.TLSPolicy.ForNextHops(ctx, domain, targets)
	default:
		return nil
	}
	if mode == route.TLSDANEOnly {
		pols = tlspolicy.RequireDANE(pols)
	}
	seen := map[string]bool{}
	for i, p := range pols {
		what, key, name := "MX", "mx", p.Host
		if !rt.Direct() {
			what, key, name = "next hop", "nexthop", targets[i].HopKey()
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		a.log.Info(fmt.Sprintf("%s: TLS policy for %s %s: %s", domain, what, name, p),
			"event", "tls_policy", "domain", domain, key, name, "route", rt.String(), "tls", mode.String(),
			"policy", p.Kind.String(), "reason", p.Reason)
	}
	return pols
}

// policyOutcome returns the callback that records the check of policy p
// at t.
func (a *Agent) policyOutcome(p tlspolicy.HostPolicy, t route.Target) func(error) {
	return func(err error) {
		if a.cfg.TLSPolicy != nil {
			a.cfg.TLSPolicy.Outcome(p, t, err)
		}
		if err != nil && p.Kind == tlspolicy.MTASTSTesting {
			a.log.Warn(fmt.Sprintf("%s: MTA-STS testing policy check failed for %s, delivering anyway: %v", p.Domain, t, err),
				"event", "tls_policy_failed", "domain", p.Domain, "relay", t.String(), "policy", p.Kind.String(), "err", err.Error())
		}
	}
}

// policyWords names the policy in a failure reply, e.g. " (DANE)".
func policyWords(hp *tlspolicy.HostPolicy) string {
	switch {
	case hp == nil:
		return ""
	case hp.Kind == tlspolicy.DANE:
		return " (DANE)"
	case hp.Kind == tlspolicy.MTASTS:
		return " (MTA-STS)"
	}
	return ""
}

// ReplyPolicyTLSNotOffered returns the reply for this case: the host's
// DANE or MTA-STS policy makes TLS mandatory and it offered no STARTTLS
// (RFC 7672 §2.2: defer, never plain text; RFC 3463 X.7.5).
func ReplyPolicyTLSNotOffered(p tlspolicy.HostPolicy, t route.Target) smtp.Reply {
	what := p.Kind.String() + " policy"
	if p.Kind == tlspolicy.DANE && len(p.TLSA) > 0 {
		what = "DANE (TLSA " + p.TLSA[0].Owner + ")"
	}
	return smtp.NewReply(451, "4.7.5", fmt.Sprintf("%s requires TLS but %s does not offer STARTTLS", what, t))
}

// ReplyRequireTLSNoPolicy returns the reply for this case: the message
// carries REQUIRETLS and the next hop is not authenticated by DANE or
// MTA-STS (RFC 8689 §4.2.1: fail, do not retry for days; RFC 8689 §5
// code).
func ReplyRequireTLSNoPolicy(t route.Target, why string) smtp.Reply {
	return smtp.NewReply(550, smtp.EnhRequireTLS, "REQUIRETLS: "+t.String()+" is not authenticated by DANE or MTA-STS ("+why+")")
}

// tlsNeed is what one message asks of the connection's TLS.
type tlsNeed struct {
	// requireTLS: MAIL FROM had REQUIRETLS (RFC 8689 §4).
	requireTLS bool
	// optional: the message says "TLS-Required: No" (RFC 8689 §5) and
	// has no REQUIRETLS, so policy failures do not stop it.
	optional bool
}

// needOf returns the TLS needs of a message.
func needOf(env *smtp.Envelope) tlsNeed {
	return tlsNeed{requireTLS: env.RequireTLS, optional: env.TLSOptional && !env.RequireTLS}
}

func (n tlsNeed) relaxed() bool { return n.optional }

// canUse reports whether an open session suits the message: a session
// opened with the policy waived serves only messages that waive it, and a
// REQUIRETLS message needs an authenticated one.
func (n tlsNeed) canUse(s *session) bool {
	if s.relaxed && !n.optional {
		return false
	}
	return !n.requireTLS || s.c.authTLS
}

// keySuffix keeps sessions apart in the pool by the policy they were
// opened under (one MX host may serve domains with different MTA-STS
// policies), and those opened with the policy waived.
func (n tlsNeed) keySuffix(hp *tlspolicy.HostPolicy) string {
	if hp == nil {
		return ""
	}
	if n.optional {
		return "|tls-optional"
	}
	return "|" + hp.Kind.String()
}

// refuse says whether target t may be tried for the message at all: a
// REQUIRETLS message goes only to hops DANE or MTA-STS (or a tls=required
// route) authenticate, also the next hops of a tls = "dane" route that
// DANE authenticates; a host the policy refuses is skipped with its reply.
func (n tlsNeed) refuse(rt route.Route, t route.Target, hp *tlspolicy.HostPolicy) (smtp.Reply, bool) {
	if hp != nil && hp.Refuse != nil {
		return *hp.Refuse, false // reported by acquire
	}
	if !n.requireTLS {
		return smtp.Reply{}, true
	}
	switch {
	case hp != nil && !hp.Authenticated():
		return ReplyRequireTLSNoPolicy(t, hp.Reason), false
	case hp == nil && rt.Policy.TLS != route.TLSRequired:
		return ReplyRequireTLSNoPolicy(t, "route "+rt.String()+" has tls = \""+rt.Policy.TLS.String()+"\""), false
	}
	return smtp.Reply{}, true
}

// effectivePolicy is p as it applies to a message with need over route
// rt: waived to opportunistic TLS for TLS-Required: No (RFC 8689 §5),
// except where the route itself demands DANE (tls = "dane-only"), as
// tls = "required" is not waived either.
func (a *Agent) effectivePolicy(p tlspolicy.HostPolicy, need tlsNeed, rt route.Route) *tlspolicy.HostPolicy {
	if need.optional && p.Kind != tlspolicy.Opportunistic && rt.Policy.TLS != route.TLSDANEOnly {
		p.Reason = "TLS-Required: No (RFC 8689 §5) waives " + p.Kind.String() + ": " + p.Reason
		p.Kind, p.Refuse = tlspolicy.Opportunistic, nil
		what, key := "MX", "mx"
		if !rt.Direct() {
			what, key = "next hop", "nexthop"
		}
		a.log.Info(fmt.Sprintf("%s: TLS policy for %s %s: %s", p.Domain, what, p.Host, p.Reason),
			"event", "tls_policy_waived", "domain", p.Domain, key, p.Host)
	}
	return &p
}
