package tlspolicy

import (
	"context"

	"github.com/ferrymta/ferry/internal/route"
)

// This file holds DANE for routes with configured next hops (tls = "dane"
// and "dane-only", Postfix's levels of the same names): the TLSA records
// of the next hop's own name, or of the MX hosts its MX lookup found.

// ForNextHops returns the policy of each target of a route with configured
// next hops and tls = "dane", in the same order: DANE where the host's
// TLSA records at _PORT._tcp.HOST are secure and usable (RFC 7672 §2.2,
// the port the route dials), a deferral where their lookup fails, encrypt
// where they are all unusable, opportunistic TLS (as tls = "may") where
// DANE does not apply. domain is the recipient domain, for the log. The
// policies are marked Local. RequireDANE narrows them for "dane-only".
func (e *Engine) ForNextHops(ctx context.Context, domain string, targets []route.Target) []HostPolicy {
	out := make([]HostPolicy, len(targets))
	byHop := map[string]HostPolicy{}
	for i, t := range targets {
		if p, ok := byHop[t.HopKey()]; ok {
			out[i] = p
			continue
		}
		p, _ := e.daneAt(ctx, domain, t, t.Port)
		p.Local = true
		byHop[t.HopKey()] = p
		out[i] = p
	}
	return out
}

// RequireDANE returns pols with every host that DANE does not authenticate
// refused (451 4.7.5), as tls = "dane-only" asks: no TLSA records, only
// unusable ones, or DNS answers that are not DNSSEC-secure. A DANE policy
// whose certificate check then fails defers as any DANE policy does.
func RequireDANE(pols []HostPolicy) []HostPolicy {
	out := make([]HostPolicy, len(pols))
	for i, p := range pols {
		if p.Kind != DANE && p.Refuse == nil {
			rep := ReplyDANE("DANE required by the route (tls = \"dane-only\") but " + p.Host + " has none: " + p.Reason)
			p.Refuse, p.Local = &rep, true
			p.Reason += `; not used: tls = "dane-only"`
		}
		out[i] = p
	}
	return out
}
