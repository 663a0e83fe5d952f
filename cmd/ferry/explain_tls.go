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
// MX host and why (DANE, MTA-STS, opportunistic), and what the message's
// REQUIRETLS or TLS-Required: No means for it. A route with configured
// next hops is governed by its tls setting alone.
func explainTLS(ctx context.Context, cfg config.Config, rt route.Route, domain string, targets []route.Target, env *smtp.Envelope) []string {
	if !rt.Direct() {
		out := []string{fmt.Sprintf("route with configured next hops: tls = %q applies (DANE and MTA-STS are for MX delivery)", rt.Policy.TLS)}
		if env.RequireTLS && rt.Policy.TLS != route.TLSRequired {
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
	for _, v := range eng.Verdicts(ctx, domain, targets) {
		p := v.Applied
		line := fmt.Sprintf("MX %s: %s (%s)", v.Host, p.Kind, p.Reason)
		switch {
		case env.TLSOptional && !env.RequireTLS && p.Kind != tlspolicy.Opportunistic:
			line += "; waived for this message by TLS-Required: No (RFC 8689 §5)"
		case env.RequireTLS && !p.Authenticated():
			line += "; REQUIRETLS: not authenticated by DANE or MTA-STS, so not used (5.7.30 when no MX is)"
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
