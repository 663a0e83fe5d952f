package deliver

import (
	"context"
	"crypto/tls"
	"errors"

	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/tlspolicy"
)

// This file holds connection set-up for the Agent: taking an idle pooled
// connection or opening a new one (greeting, EHLO, STARTTLS, AUTH).

// acquire returns a ready session to one of targets, tried in order: an
// idle pooled connection or a new one. pols, when not nil, holds each
// target's TLS policy (direct delivery, tls = "dane"); need says what the
// message asks of TLS. On failure it returns nil and the reply of the last
// failure.
func (a *Agent) acquire(ctx context.Context, rt route.Route, targets []route.Target, pols []tlspolicy.HostPolicy, need tlsNeed) (*session, smtp.Reply) {
	limit := rt.Policy.MaxConnections
	if limit <= 0 {
		limit = a.cfg.MaxConnsPerHop
	}
	last := smtp.NewReply(451, smtp.EnhNoAnswer, "No next hop address to connect to")
	// A host that is down now may qualify later: a REQUIRETLS refusal of
	// other hosts fails the message only when no host failed transiently.
	var transient *smtp.Reply
	failed := func(rep smtp.Reply) {
		last = rep
		if !rep.Permanent() && transient == nil {
			transient = &rep
		}
	}
	// Under tls = "dane" or "dane-only" each host's policy decides, as
	// for MX hosts; without one the hop is treated as tls = "may".
	mode := rt.Policy.TLS
	if mode.DANE() {
		mode = route.TLSMay
	}
	for i, t := range targets {
		var hp *tlspolicy.HostPolicy
		if pols != nil {
			hp = a.effectivePolicy(pols[i], need, rt)
		}
		if rep, ok := need.refuse(rt, t, hp); !ok {
			if hp != nil && hp.Refuse != nil {
				a.policyOutcome(*hp, t)(tlspolicy.ErrRefused)
			}
			failed(rep)
			continue
		}
		key := t.Addr() + "|" + t.Host + "|" + rt.Pattern + need.keySuffix(hp)
		for range 3 {
			c, err := a.pool.get(ctx, key, limit)
			if err != nil {
				return nil, ReplyConnectionLost()
			}
			if c == nil {
				break
			}
			if err := c.Reset(ctx); err == nil {
				return &session{c: c, key: key, relaxed: need.relaxed()}, smtp.Reply{}
			}
			_ = c.Close()
			a.pool.drop(key)
		}
		c, rep := a.open(ctx, t, rt.Policy, mode, hp)
		if c != nil {
			return &session{c: c, key: key, relaxed: need.relaxed()}, smtp.Reply{}
		}
		a.pool.drop(key)
		failed(rep)
		if ctx.Err() != nil {
			break
		}
	}
	if last.Enhanced == smtp.EnhRequireTLS && transient != nil {
		return nil, *transient
	}
	return nil, last
}

// open connects to t and sets the session up: EHLO (or HELO), STARTTLS as
// the policy says, EHLO again, AUTH. It records the hop in the cache. On
// failure it returns nil and the reply the recipients get.
//
// hp, when not nil, is the host's TLS policy (DANE, MTA-STS): a mandatory
// one makes STARTTLS and its check required (RFC 7672 §2.2, RFC 8461 §5),
// whatever the route's mode.
func (a *Agent) open(ctx context.Context, t route.Target, pol route.Policy, mode route.TLSMode, hp *tlspolicy.HostPolicy) (*Client, smtp.Reply) {
	c, err := Dial(ctx, t, a.cfg.Timeouts, a.cfg.Dial)
	if err != nil {
		var re *ReplyError
		if errors.As(err, &re) {
			return nil, re.Reply
		}
		a.log.Info("deliver: connect failed", "relay", t.String(), "err", err)
		return nil, smtp.NewReply(451, smtp.EnhNoAnswer, "Connection to "+t.String()+" failed: "+shortErr(err))
	}
	if a.cfg.Transcript != nil {
		c.SetTranscript(a.cfg.Transcript(t))
	}
	name := pol.EHLOName
	if name == "" {
		name = a.cfg.HeloName
	}
	fail := func(err error) (*Client, smtp.Reply) {
		_ = c.Close()
		var re *ReplyError
		if errors.As(err, &re) {
			return nil, re.Reply
		}
		return nil, smtp.NewReply(451, smtp.EnhBadConnection, "Session with "+t.String()+" failed: "+shortErr(err))
	}
	if err := c.Hello(ctx, name, pol.DiscardKeywords); err != nil {
		return fail(err)
	}
	mandatory := mode == route.TLSRequired || (hp != nil && hp.Mandatory())
	switch {
	case mode == route.TLSNone && hp == nil:
	case c.Extensions().Has("STARTTLS"):
		cfg := &tls.Config{
			ServerName:         t.Host,
			RootCAs:            a.cfg.RootCAs,
			MinVersion:         tls.VersionTLS12,
			CipherSuites:       smtp.CipherSuites(),  // no CBC-SHA1 suites
			InsecureSkipVerify: mode == route.TLSMay, // RFC 7435: opportunistic, unauthenticated
		}
		if hp != nil {
			cfg = hp.TLSConfig(a.cfg.RootCAs, a.cfg.Now, a.policyOutcome(*hp, t))
			if mode == route.TLSRequired && !hp.Authenticated() {
				// The route asks for a verified certificate; a
				// policy that authenticates nothing (no policy,
				// DANE with only unusable records, MTA-STS in
				// testing mode) must not waive the chain check.
				cfg.InsecureSkipVerify = false
			}
		}
		err := c.StartTLS(ctx, cfg)
		if err == nil && hp != nil && hp.Authenticated() {
			c.verified = true // by the policy's own check (TLSA or MTA-STS)
		}
		a.logTLS(c, err)
		if err != nil {
			var re *ReplyError
			if mandatory {
				_ = c.Close()
				return nil, smtp.NewReply(451, "4.7.5", "TLS with "+t.String()+" failed"+policyWords(hp)+": "+shortErr(err))
			}
			if errors.As(err, &re) && !c.Broken() {
				break // a refused STARTTLS leaves the plain session usable
			}
			_ = c.Close()
			a.log.Info("deliver: TLS failed, retrying without TLS", "relay", t.String(), "err", err)
			return a.open(ctx, t, pol, route.TLSNone, nil)
		}
		if err := c.Hello(ctx, name, pol.DiscardKeywords); err != nil {
			return fail(err)
		}
		c.authTLS = mode == route.TLSRequired || (hp != nil && hp.Authenticated())
	case hp != nil && hp.Mandatory():
		// STARTTLS missing where policy demands it: stripped by an
		// attacker or misconfigured; never fall back to plain text.
		c.quitQuietly()
		a.policyOutcome(*hp, t)(tlspolicy.ErrNoStartTLS)
		return nil, ReplyPolicyTLSNotOffered(*hp, t)
	case mode == route.TLSRequired:
		c.quitQuietly()
		return nil, ReplyTLSNotOffered()
	}
	if hp != nil {
		c.policy = *hp
	}
	a.hops.Record(HopInfoOf(c, a.cfg.Now()))
	if pol.Auth != nil {
		if !c.Extensions().Has("AUTH") {
			a.log.Warn("deliver: credentials configured but next hop offers no AUTH", "relay", t.String())
		} else if err := c.Auth(ctx, *pol.Auth); err != nil {
			if errors.Is(err, ErrAuthWithoutTLS) {
				c.quitQuietly()
				return nil, ReplyAuthWithoutTLS()
			}
			return fail(err)
		}
	}
	return c, smtp.Reply{}
}

// shortErr returns the last part of a wrapped error, e.g.
// "connection refused".
func shortErr(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
