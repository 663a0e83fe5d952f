package main

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ferrymta/ferry/internal/access"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// accessPolicy adapts the relay decisions of internal/access to the inbound
// server's Policy hooks. A reload swaps the rules; sessions see the new
// ones from their next command on.
type accessPolicy struct {
	rules atomic.Pointer[access.Policy]
	// config is what rules were built from, to tell whether a reload
	// changes them (a new Policy starts its rate limits afresh).
	config atomic.Pointer[access.Config]
}

// buildAccess builds the relay policy from the [relay] section and the
// flags: --relay-network, given at all, replaces the configured networks;
// --accept-domain adds to the accepted domains.
func buildAccess(cfg config.Config, f serveFlags) (*accessPolicy, error) {
	ac, rules, err := newAccessRules(cfg, f)
	if err != nil {
		return nil, err
	}
	p := &accessPolicy{}
	p.set(ac, rules)
	return p, nil
}

// newAccessRules builds the relay rules from the configuration and flags.
func newAccessRules(cfg config.Config, f serveFlags) (access.Config, *access.Policy, error) {
	ac, err := accessConfig(cfg, f)
	if err != nil {
		return ac, nil, err
	}
	rules, err := access.New(ac)
	if err != nil {
		return ac, nil, fmt.Errorf("relay access: %w", err)
	}
	return ac, rules, nil
}

// set puts rules, built from ac, in force.
func (p *accessPolicy) set(ac access.Config, rules *access.Policy) {
	p.config.Store(&ac)
	p.rules.Store(rules)
}

// changed reports whether ac differs from the configuration in force.
func (p *accessPolicy) changed(ac access.Config) bool {
	cur := p.config.Load()
	return cur == nil || !reflect.DeepEqual(*cur, ac)
}

// accessConfig maps the [relay] section and the flags onto access.Config.
func accessConfig(cfg config.Config, f serveFlags) (access.Config, error) {
	r := cfg.Relay
	ac := access.Config{
		RelayNetworks: slices.Clone(r.Networks),
		AcceptDomains: slices.Clone(r.AcceptDomains),
		SenderRules:   slices.Clone(r.SenderRules),
		Rate:          access.RateConfig{PerIP: r.PerIP, PerUser: r.PerUser},
	}
	if r.Networks != nil && len(r.Networks) == 0 {
		ac.RelayNetworks = []netip.Prefix{} // "networks = []": no network relays
	}
	if len(f.relayNets) > 0 {
		ac.RelayNetworks = nil
		for _, s := range f.relayNets {
			p, err := access.ParseNetwork(s)
			if err != nil {
				return ac, fmt.Errorf("--relay-network %q: %w", s, err)
			}
			ac.RelayNetworks = append(ac.RelayNetworks, p)
		}
	}
	ac.AcceptDomains = append(ac.AcceptDomains, f.accept...)
	return ac, nil
}

// Trusted reports whether a client address is in the relay networks in
// force: such clients may use the reserved connections and are not made
// to wait before the greeting.
func (p *accessPolicy) Trusted(remote net.Addr) bool {
	ap, err := netip.ParseAddrPort(addrString(remote))
	return err == nil && p.rules.Load().InRelayNetworks(ap.Addr().Unmap())
}

// client describes a session to internal/access.
func client(sess smtpd.SessionInfo) access.Client {
	c := access.Client{User: sess.User, TLS: sess.TLS}
	if ap, err := netip.ParseAddrPort(addrString(sess.Remote)); err == nil {
		c.IP = ap.Addr().Unmap()
	}
	return c
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Connect accepts every connection; limits are the server's.
func (*accessPolicy) Connect(net.Addr) *smtp.Reply { return nil }

// Mail applies the sender rules.
func (p *accessPolicy) Mail(sess smtpd.SessionInfo, from smtp.Path, _ smtp.Params) *smtpd.Refusal {
	return refusal(p.rules.Load().Mail(client(sess), from))
}

// Rcpt decides relaying (RFC 5321 §3.6): relay networks and authenticated
// users may send anywhere, everyone else only to accepted domains. The
// recipient limit is the listener's (max_recipients).
func (p *accessPolicy) Rcpt(sess smtpd.SessionInfo, to smtp.Path, _ smtp.Params) *smtpd.Refusal {
	return refusal(p.rules.Load().Rcpt(client(sess), to))
}

// Data applies the message rate limits. The server asks once per message,
// at DATA or the first BDAT, so a transaction that never gets a recipient
// (or ends before its content) does not count.
func (p *accessPolicy) Data(sess smtpd.SessionInfo, _ *smtp.Envelope) *smtpd.Refusal {
	return refusal(p.rules.Load().AllowMessage(client(sess), time.Now()))
}

// refusal turns a refused access decision into the server's Refusal, with
// the decision's reason for the reject line; an allowed one is nil.
func refusal(d access.Decision) *smtpd.Refusal {
	if d.Allow {
		return nil
	}
	return &smtpd.Refusal{Reply: d.Reply, Reason: d.Reason}
}
