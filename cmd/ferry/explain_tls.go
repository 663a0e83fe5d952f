package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/tlspolicy"
)

// explainTLS says, for a direct delivery, which TLS policy applies to each
// MX host and why (DANE, MTA-STS, opportunistic), and, for a route with
// configured next hops and tls = "dane" or "dane-only", the DANE policy of
// each next hop; and what the message's REQUIRETLS or TLS-Required: No
// means for it. Another route with configured next hops is governed by its
// tls setting alone.
func explainTLS(ctx context.Context, cfg config.Config, rt route.Route, domain string, targets []route.Target, env *smtp.Envelope) []string {
	mode := rt.Policy.TLS
	if !rt.Direct() && !mode.DANE() {
		out := []string{fmt.Sprintf("route with configured next hops: tls = %q applies (DANE and MTA-STS are for MX delivery, or tls = \"dane\")", mode)}
		if env.RequireTLS && mode != route.TLSRequired {
			out = append(out, "REQUIRETLS: the route does not verify its hop (tls = \"required\"), so the message fails with 5.7.30")
		}
		return out
	}
	res, err := newResolver(cfg)
	if err != nil {
		return []string{err.Error()}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sts, err := newSTS(cfg, res, quiet, false)
	if err != nil {
		return []string{err.Error()}
	}
	eng := tlspolicy.NewEngine(tlspolicy.EngineConfig{Resolver: res, STS: sts, Logger: quiet})
	var out []string
	if !res.DNSSEC() {
		out = append(out, "DANE is off: no validating resolver (delivery.dnssec_resolver)")
	}
	var names []string
	var pols []tlspolicy.HostPolicy
	if rt.Direct() {
		for _, v := range eng.Verdicts(ctx, domain, targets) {
			names, pols = append(names, "MX "+v.Host), append(pols, v.Applied)
		}
	} else {
		seen := map[string]bool{}
		for i, p := range eng.ForNextHops(ctx, domain, targets) {
			if key := targets[i].HopKey(); !seen[key] {
				seen[key] = true
				names, pols = append(names, "next hop "+key), append(pols, p)
			}
		}
	}
	if mode == route.TLSDANEOnly {
		pols = tlspolicy.RequireDANE(pols)
	}
	for i, p := range pols {
		line := fmt.Sprintf("%s: %s (%s)", names[i], p.Kind, p.Reason)
		switch {
		case env.TLSOptional && !env.RequireTLS && p.Kind != tlspolicy.Opportunistic && mode != route.TLSDANEOnly:
			line += "; waived for this message by TLS-Required: No (RFC 8689 §5)"
		case env.RequireTLS && !p.Authenticated():
			line += "; REQUIRETLS: not authenticated by DANE or MTA-STS, so not used (5.7.30 when no host is)"
		case env.RequireTLS:
			line += "; REQUIRETLS: used only if it offers REQUIRETLS, else 5.7.30"
		}
		if p.Refuse != nil {
			line += "; not used: " + p.Refuse.String()
		}
		out = append(out, line)
	}
	return out
}
