package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/tlspolicy"
)

// This file holds "ferry probe DOMAIN": the outbound TLS policy of a
// recipient domain's MX hosts (DANE, MTA-STS), checked against each host.

// probeDomainReport is the report of "ferry probe DOMAIN".
type probeDomainReport struct {
	Domain string `json:"domain"`
	// DNSSEC says whether a validating resolver is configured (without
	// one DANE is off).
	DNSSEC bool      `json:"dnssec_resolver"`
	MTASTS *probeSTS `json:"mta_sts"`
	// TLSRPT lists the TLS report addresses (RFC 8460), or says why none.
	TLSRPT  []string         `json:"tls_rpt,omitempty"`
	NoRPT   string           `json:"tls_rpt_error,omitempty"`
	Hosts   []probeHostEntry `json:"hosts"`
	Error   string           `json:"error,omitempty"`
	Applied string           `json:"-"`
}

// probeSTS is the domain's MTA-STS policy as found.
type probeSTS struct {
	Mode   string   `json:"mode,omitempty"`
	MX     []string `json:"mx,omitempty"`
	MaxAge int64    `json:"max_age,omitempty"`
	Reason string   `json:"reason"`
}

// probeHostEntry is one MX host's verdicts.
type probeHostEntry struct {
	Host      string   `json:"host"`
	Addresses []string `json:"addresses"`
	MXSecure  bool     `json:"mx_secure"`
	AddrSec   bool     `json:"addresses_secure"`
	DANE      struct {
		Applies bool     `json:"applies"`
		Reason  string   `json:"reason"`
		TLSA    []string `json:"tlsa,omitempty"`
	} `json:"dane"`
	STS struct {
		Applies bool   `json:"applies"`
		Match   bool   `json:"mx_matches"`
		Verdict string `json:"verdict"`
	} `json:"mta_sts"`
	Policy string `json:"policy"`
	Reason string `json:"reason"`
	// Check is the outcome of a STARTTLS session under the policy.
	Check probeCheck `json:"check"`
}

// probeCheck is what a session to the host under its policy showed.
type probeCheck struct {
	Address string `json:"address,omitempty"`
	Result  string `json:"result"` // "pass", "fail", "refused", "not tried"
	Detail  string `json:"detail,omitempty"`
}

// probeDomain resolves domain's MX hosts through Ferry's DNS client and
// reports each host's DANE and MTA-STS verdicts and the policy that
// applies, then tries a session under it (no mail is sent).
func probeDomain(ctx context.Context, cfg config.Config, domain, ehlo string, roots *x509.CertPool, logger *slog.Logger) probeDomainReport {
	rep := probeDomainReport{Domain: domain}
	res, err := newResolver(cfg)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.DNSSEC = res.DNSSEC()
	sts, err := newSTS(cfg, res, logger, false)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	eng := tlspolicy.NewEngine(tlspolicy.EngineConfig{Resolver: res, STS: sts, Logger: logger})
	table, err := route.NewTable(route.Options{Resolver: res, MXPort: cfg.Delivery.TLSPolicy.MXPort})
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	targets, err := table.Resolve(ctx, route.Route{}, domain)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	if ruas, err := tlspolicy.LookupRUA(ctx, res, domain); err != nil {
		rep.NoRPT = err.Error()
	} else {
		for _, u := range ruas {
			rep.TLSRPT = append(rep.TLSRPT, u.String())
		}
	}
	verdicts := eng.Verdicts(ctx, domain, targets)
	if len(verdicts) > 0 {
		v := verdicts[0]
		rep.MTASTS = &probeSTS{Reason: v.STSReason}
		if v.STS != nil {
			rep.MTASTS.Mode, rep.MTASTS.MX, rep.MTASTS.MaxAge = v.STS.Mode, v.STS.MX, int64(v.STS.MaxAge.Seconds())
		}
	}
	for _, v := range verdicts {
		var e probeHostEntry
		e.Host = v.Host
		var first route.Target
		for _, t := range targets {
			if t.Host == v.Host {
				if first.Host == "" {
					first = t
				}
				e.Addresses = append(e.Addresses, t.IP.String())
				e.MXSecure, e.AddrSec = t.MXSecure, t.AddrSecure
			}
		}
		e.DANE.Applies, e.DANE.Reason = v.DANEApplies, v.DANE.Reason
		for _, r := range v.DANE.TLSA {
			e.DANE.TLSA = append(e.DANE.TLSA, r.Presentation())
		}
		switch {
		case v.STS == nil:
			e.STS.Verdict = "no policy (" + v.STSReason + ")"
		case v.DANEApplies:
			e.STS.Verdict = "mode " + v.STS.Mode + ", not used: DANE takes precedence (RFC 8461 §2)"
		default:
			e.STS.Applies = v.STS.Mode != "none"
			e.STS.Verdict = "mode " + v.STS.Mode
		}
		e.STS.Match = v.STSMatch
		if v.STS != nil && !v.STSMatch {
			e.STS.Verdict += ", MX not listed"
		}
		e.Policy, e.Reason = v.Applied.Kind.String(), v.Applied.Reason
		e.Check = checkHost(ctx, cfg, first, v.Applied, ehlo, roots)
		rep.Hosts = append(rep.Hosts, e)
	}
	return rep
}

// checkHost opens a session to t under policy p (EHLO, STARTTLS, the
// policy's certificate check) and says how it went.
func checkHost(ctx context.Context, cfg config.Config, t route.Target, p tlspolicy.HostPolicy, ehlo string, roots *x509.CertPool) probeCheck {
	chk := probeCheck{Address: t.String()}
	if p.Refuse != nil {
		chk.Result, chk.Detail = "refused", p.Refuse.String()
		return chk
	}
	c, err := deliver.Dial(ctx, t, deliver.Timeouts{}, nil)
	if err != nil {
		chk.Result, chk.Detail = "fail", err.Error()
		return chk
	}
	defer c.Quit()
	if err := c.Hello(ctx, ehlo, nil); err != nil {
		chk.Result, chk.Detail = "fail", err.Error()
		return chk
	}
	if !c.Offered().Has("STARTTLS") {
		if p.Mandatory() {
			chk.Result, chk.Detail = "fail", "STARTTLS not offered; delivery defers (4.7.5)"
		} else {
			chk.Result, chk.Detail = "pass", "no STARTTLS: delivery goes unencrypted under opportunistic TLS"
		}
		return chk
	}
	var verr error
	tc := p.TLSConfig(roots, time.Now, func(err error) {
		if err != nil && verr == nil {
			verr = err
		}
	})
	if err := c.StartTLS(ctx, tc); err != nil {
		chk.Result, chk.Detail = "fail", err.Error()
		if verr != nil {
			chk.Detail = verr.Error() // the policy's own words
		}
		return chk
	}
	switch {
	case verr != nil && p.Kind == tlspolicy.MTASTSTesting:
		chk.Result, chk.Detail = "pass", "testing mode: the check failed and would be reported: "+verr.Error()
	case verr != nil:
		chk.Result, chk.Detail = "fail", verr.Error()
	case p.Kind == tlspolicy.DANE:
		chk.Result, chk.Detail = "pass", "certificate matches a TLSA record"
	case p.Kind == tlspolicy.MTASTS:
		chk.Result, chk.Detail = "pass", "certificate valid for "+p.Host
	default:
		chk.Result, chk.Detail = "pass", "TLS up, certificate not checked ("+p.Kind.String()+")"
	}
	return chk
}

// printProbeDomain writes the domain report for people.
func printProbeDomain(w io.Writer, r probeDomainReport) {
	fmt.Fprintf(w, "Domain:    %s\n", r.Domain)
	if r.DNSSEC {
		fmt.Fprintln(w, "DNSSEC:    validating resolver configured (delivery.dnssec_resolver)")
	} else {
		fmt.Fprintln(w, "DNSSEC:    no validating resolver (delivery.dnssec_resolver): DANE is off")
	}
	if s := r.MTASTS; s != nil {
		if s.Mode != "" {
			fmt.Fprintf(w, "MTA-STS:   mode %s, mx %s, max_age %ds (%s)\n", s.Mode, strings.Join(s.MX, " "), s.MaxAge, s.Reason)
		} else {
			fmt.Fprintf(w, "MTA-STS:   %s\n", s.Reason)
		}
	}
	if len(r.TLSRPT) > 0 {
		fmt.Fprintf(w, "TLS-RPT:   reports go to %s\n", strings.Join(r.TLSRPT, ", "))
	} else if r.NoRPT != "" {
		fmt.Fprintf(w, "TLS-RPT:   no reports (%s)\n", r.NoRPT)
	}
	for _, h := range r.Hosts {
		fmt.Fprintf(w, "MX %s [%s]\n", h.Host, strings.Join(h.Addresses, ", "))
		dane := "does not apply"
		if h.DANE.Applies {
			dane = "applies"
		}
		fmt.Fprintf(w, "  DANE:    %s: %s\n", dane, h.DANE.Reason)
		for _, t := range h.DANE.TLSA {
			fmt.Fprintf(w, "           TLSA %s\n", t)
		}
		fmt.Fprintf(w, "  MTA-STS: %s\n", h.STS.Verdict)
		fmt.Fprintf(w, "  Policy:  %s (%s)\n", h.Policy, h.Reason)
		fmt.Fprintf(w, "  Check:   %s", h.Check.Result)
		if h.Check.Detail != "" {
			fmt.Fprintf(w, ": %s", h.Check.Detail)
		}
		fmt.Fprintln(w)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Error:     %s\n", r.Error)
	}
}

// writeProbeDomain prints the report as text or JSON and returns the exit
// code: 1 when the lookup failed or a host's check failed.
func writeProbeDomain(stdout, stderr io.Writer, r probeDomainReport, asJSON bool) int {
	if !writeProbe(stdout, stderr, r, asJSON, func() { printProbeDomain(stdout, r) }) {
		return 1
	}
	if r.Error != "" {
		return 1
	}
	for _, h := range r.Hosts {
		if h.Check.Result != "pass" {
			return 1
		}
	}
	return 0
}
