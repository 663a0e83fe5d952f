package config

import (
	"github.com/ferrymta/ferry/internal/route"

	"errors"
	"fmt"
	"math"
	"strings"
)

// Expected forms shared by several options.
const (
	wantHost     = "a host name like \"relay.example.com\""
	wantListen   = "an address like \"127.0.0.1:2525\" or \"[::1]:2525\""
	wantPositive = "a whole number of at least 1"
	wantNextHop  = `a next hop like "host", "host:port", "[host]:port" (no MX lookup) or a comma-separated list of them`
	wantDomain   = `a domain like "example.com", ".example.com" (its subdomains) or "*" (every domain)`
	wantPath     = "a file or directory path"
)

func checkHost(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if err := checkDomain(s); err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}

func checkListen(s string) (string, error) { return s, checkAddress(s) }

func checkNextHop(s string) (string, error) {
	if _, err := route.ParseNextHops(s); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return "", err
	}
	return s, nil
}

func checkRouteDomain(s string) (string, error) {
	if s == "*" {
		return s, nil
	}
	s = strings.TrimSuffix(s, ".") // a trailing dot names the same domain
	d := strings.TrimPrefix(s, ".")
	if err := checkDomain(d); err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}

// root decodes the top-level table.
func (d *decoder) root(raw map[string]any, cfg *Config) {
	d.table(raw, "", map[string]field{
		"hostname": d.strCheck(&cfg.Hostname, wantHost, true, checkHost),
		"listener": func(v any, path string) {
			ts, ok := d.tables(v, path)
			if !ok {
				return
			}
			if len(ts) == 0 {
				d.errf(path, "want at least one [[listener]], got none")
				return
			}
			cfg.Listeners = make([]Listener, len(ts))
			for i, t := range ts {
				cfg.Listeners[i] = DefaultListener()
				d.listener(t, fmt.Sprintf("%s[%d]", path, i), &cfg.Listeners[i])
			}
		},
		"limits":   func(v any, path string) { d.limits(v, path, &cfg.Limits) },
		"relay":    func(v any, path string) { d.relay(v, path, &cfg.Relay) },
		"timeouts": func(v any, path string) { d.timeouts(v, path, &cfg.Timeouts) },
		"queue":    func(v any, path string) { d.queue(v, path, &cfg.Queue) },
		"delivery": func(v any, path string) { d.delivery(v, path, &cfg.Delivery) },
		"route": func(v any, path string) {
			ts, ok := d.tables(v, path)
			if !ok {
				return
			}
			cfg.Routes = nil
			if len(ts) == 0 {
				return
			}
			cfg.Routes = make([]Route, len(ts))
			for i, t := range ts {
				cfg.Routes[i] = DefaultRoute()
				d.route(t, fmt.Sprintf("%s[%d]", path, i), &cfg.Routes[i])
			}
		},
		"log": func(v any, path string) {
			d.table(v, path, map[string]field{
				"format": d.enum(&cfg.Log.Format, "text", "json"),
				"level":  d.enum(&cfg.Log.Level, "debug", "info", "warn", "error"),
				"file":   d.str(&cfg.Log.File, wantPath),
			})
		},
		"dsn":         func(v any, path string) { d.dsn(v, path, &cfg.DSN) },
		"transcripts": func(v any, path string) { d.transcripts(v, path, &cfg.Transcripts) },
		"dkim":        func(v any, path string) { d.dkim(v, path, &cfg.DKIM) },
		"admin": func(v any, path string) {
			d.admin(v, path, &cfg.Admin)
		},
	})
	if cfg.Hostname == "" {
		cfg.Hostname = Default().Hostname
	}
	d.crossChecks(cfg)
	d.dkimChecks(cfg)
}

func (d *decoder) listener(t map[string]any, path string, l *Listener) {
	errs := len(d.errs)
	defer func() {
		if len(d.errs) == errs {
			d.listenerSecurity(path, *l)
		}
	}()
	d.table(t, path, map[string]field{
		"address":             d.strCheck(&l.Address, wantListen, false, checkListen),
		"keywords":            d.keywords(&l.Keywords),
		"max_message_size":    d.size(&l.MaxMessageSize, 0),
		"max_recipients":      d.integer(&l.MaxRecipients, 100, math.MaxInt32, "a whole number of at least 100 (RFC 5321 §4.5.3.1.8)"),
		"bare_newline":        d.enum(&l.BareNewline, BareNormalize, BareReject),
		"transcript_dir":      d.str(&l.TranscriptDir, wantPath),
		"tls_cert":            d.str(&l.TLSCert, wantPath),
		"tls_key":             d.str(&l.TLSKey, wantPath),
		"require_tls":         d.boolean(&l.RequireTLS),
		"implicit_tls":        d.boolean(&l.ImplicitTLS),
		"auth_users_file":     d.str(&l.AuthUsersFile, wantPath),
		"allow_insecure_auth": d.boolean(&l.AllowInsecureAuth),
	})
}

func (d *decoder) limits(v any, path string, l *Limits) {
	d.table(v, path, map[string]field{
		"max_connections":        d.integer(&l.MaxConnections, 1, math.MaxInt32, wantPositive),
		"max_connections_per_ip": d.integer(&l.MaxConnectionsPerIP, 1, math.MaxInt32, wantPositive),
		"max_errors":             d.integer(&l.MaxErrors, 1, math.MaxInt32, wantPositive),
		"max_received":           d.integer(&l.MaxReceived, 1, math.MaxInt32, wantPositive),
		"reserved_connections":   d.integer(&l.ReservedConnections, 0, math.MaxInt32, "a whole number, 0 or more"),
		"max_auth_checks":        d.integer(&l.MaxAuthChecks, 1, math.MaxInt32, wantPositive),
	})
}

func (d *decoder) timeouts(v any, path string, t *Timeouts) {
	d.table(v, path, map[string]field{
		"greeting":        d.duration(&t.Greeting, false),
		"command":         d.duration(&t.Command, false),
		"data_block":      d.duration(&t.DataBlock, false),
		"data_total":      d.duration(&t.DataTotal, false),
		"hello_phase":     d.duration(&t.HelloPhase, false),
		"envelope_phase":  d.duration(&t.EnvelopePhase, false),
		"pregreet_wait":   d.duration(&t.PregreetWait, true),
		"auth_check_wait": d.duration(&t.AuthCheckWait, false),
	})
}

func (d *decoder) queue(v any, path string, q *Queue) {
	d.table(v, path, map[string]field{
		"spool": d.strCheck(&q.Spool, "a directory path", false, func(s string) (string, error) {
			return s, nil
		}),
		"retry_initial":   d.duration(&q.RetryInitial, false),
		"retry_max":       d.duration(&q.RetryMax, false),
		"lifetime":        d.duration(&q.Lifetime, false),
		"bounce_lifetime": d.duration(&q.BounceLifetime, false),
		"delay_warning":   d.duration(&q.DelayWarning, true),
		"hop_concurrency": d.integer(&q.HopConcurrency, 1, math.MaxInt32, wantPositive),
		"segment_size":    d.size(&q.SegmentSize, 1<<20),
		"reserve":         d.size(&q.Reserve, 0),
		"backend":         d.strCheck(&q.Backend, wantBackend, false, checkBackend),
		"url":             d.queueURL(&q.URL),
		"node":            d.strCheck(&q.Node, wantHost, true, checkHost),
		"lease_timeout":   d.duration(&q.LeaseTimeout, false),
	})
}

func (d *decoder) delivery(v any, path string, dl *Delivery) {
	fields := d.tlsPolicyFields(&dl.TLSPolicy)
	for k, f := range map[string]field{
		"ehlo_name":                   d.strCheck(&dl.EHLOName, wantHost, true, checkHost),
		"workers":                     d.integer(&dl.Workers, 1, math.MaxInt32, wantPositive),
		"max_messages_per_connection": d.integer(&dl.MaxMessagesPerConnection, 1, math.MaxInt32, wantPositive),
		"idle_timeout":                d.duration(&dl.IdleTimeout, true),
		"smarthost": func(v any, path string) {
			d.strCheck(&dl.Smarthost, wantNextHop, true, checkNextHop)(v, path)
			dl.SmarthostHops = nil
			if dl.Smarthost != "" {
				dl.SmarthostHops, _ = route.ParseNextHops(dl.Smarthost)
			}
		},
		"tls_ca_file": d.str(&dl.TLSCAFile, wantPath),
		"timeouts": func(v any, path string) {
			t := &dl.Timeouts
			d.table(v, path, map[string]field{
				"connect":    d.duration(&t.Connect, false),
				"greeting":   d.duration(&t.Greeting, false),
				"mail":       d.duration(&t.Mail, false),
				"rcpt":       d.duration(&t.Rcpt, false),
				"data_init":  d.duration(&t.DataInit, false),
				"data_block": d.duration(&t.DataBlock, false),
				"data_done":  d.duration(&t.DataDone, false),
			})
		},
	} {
		fields[k] = f
	}
	d.table(v, path, fields)
}

func (d *decoder) route(t map[string]any, path string, r *Route) {
	if _, ok := t["domain"]; !ok {
		d.errf(path, "missing domain; want %s", wantDomain)
	}
	d.table(t, path, map[string]field{
		"domain": d.strCheck(&r.Domain, wantDomain, false, checkRouteDomain),
		"nexthop": func(v any, path string) {
			d.strCheck(&r.NextHop, wantNextHop, true, checkNextHop)(v, path)
			r.NextHops = nil
			if r.NextHop != "" {
				r.NextHops, _ = route.ParseNextHops(r.NextHop)
			}
		},
		"eightbit":                    d.enum(&r.EightBit, PolicyConvert, PolicyBounce),
		"dkim_signed":                 d.enum(&r.DKIMSigned, PolicyConvert, PolicyBounce, PolicyARC),
		"dkim_key":                    d.str(&r.DKIMKey, "a key's domain or selector._domainkey.domain"),
		"tls":                         d.enum(&r.TLS, TLSNone, TLSMay, TLSRequired, TLSDANE, TLSDANEOnly),
		"auth_user":                   d.str(&r.AuthUser, "a user name"),
		"auth_password_file":          d.str(&r.AuthPasswordFile, wantPath),
		"ehlo_name":                   d.strCheck(&r.EHLOName, wantHost, true, checkHost),
		"discard_keywords":            d.keywords(&r.DiscardKeywords),
		"max_connections":             d.integer(&r.MaxConnections, 0, math.MaxInt32, "a whole number (0: queue.hop_concurrency)"),
		"max_messages_per_connection": d.integer(&r.MaxMessagesPerConnection, 0, math.MaxInt32, "a whole number (0: delivery.max_messages_per_connection)"),
	})
}

// checkDANERoute validates tls = "dane" and "dane-only" on the route at
// path p: TLSA records are found by the next hop's name (RFC 7672 §2.2),
// so an IP-address next hop (its own or the smart host it falls back to)
// cannot have them; and "dane-only" without a validating resolver would
// defer all its mail.
func (d *decoder) checkDANERoute(p string, r Route, dl Delivery) {
	if r.TLS != TLSDANE && r.TLS != TLSDANEOnly {
		return
	}
	hops, from := r.NextHops, "nexthop"
	if len(hops) == 0 {
		hops, from = dl.SmarthostHops, "delivery.smarthost"
	}
	if h, ok := route.AddressHop(hops); ok {
		d.errf(p+".tls", "want next hops named by host name with tls = %q (TLSA records are found at _PORT._tcp.HOST, RFC 7672 §2.2), got %s in %s (an IP address has no name)", r.TLS, h, from)
	}
	if r.TLS == TLSDANEOnly && dl.TLSPolicy.DNSSECResolver == "" {
		d.errf(p+".tls", `want delivery.dnssec_resolver (a validating resolver) with tls = "dane-only", got none (no TLSA record could be known to be DNSSEC-secure, so all its mail would wait)`)
	}
}

// crossChecks validates rules that span options.
func (d *decoder) crossChecks(cfg *Config) {
	seenAddr := map[string]int{}
	for i, l := range cfg.Listeners {
		p := fmt.Sprintf("listener[%d]", i)
		if j, dup := seenAddr[l.Address]; dup {
			d.errf(p+".address", "want each listener on its own address, got %q again (first on line %d)", l.Address, d.lines.lineOf(fmt.Sprintf("listener[%d].address", j)))
		}
		seenAddr[l.Address] = i
		has := map[string]bool{}
		for _, k := range l.Keywords {
			has[k] = true
		}
		if has["BINARYMIME"] && !has["CHUNKING"] {
			d.errf(p+".keywords", "want CHUNKING with BINARYMIME (RFC 3030 §3), got BINARYMIME alone")
		}
	}
	if cfg.Limits.MaxConnectionsPerIP > cfg.Limits.MaxConnections {
		d.errf("limits.max_connections_per_ip", "want at most limits.max_connections (%d), got %d", cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP)
	}
	d.checkQueueBackend(cfg.Queue)
	if _, set := d.lines["limits.reserved_connections"]; !set {
		// Not given: a tenth of the connections, whatever max_connections is.
		cfg.Limits.ReservedConnections = cfg.Limits.MaxConnections / 10
	}
	if cfg.Limits.ReservedConnections >= cfg.Limits.MaxConnections {
		d.errf("limits.reserved_connections", "want fewer than limits.max_connections (%d), got %d", cfg.Limits.MaxConnections, cfg.Limits.ReservedConnections)
	}
	if cfg.Queue.RetryMax < cfg.Queue.RetryInitial {
		d.errf("queue.retry_max", "want at least queue.retry_initial (%s), got %q", FormatDuration(cfg.Queue.RetryInitial), FormatDuration(cfg.Queue.RetryMax))
	}
	if cfg.Queue.Reserve >= cfg.Queue.SegmentSize/2 {
		d.errf("queue.reserve", "want less than half of queue.segment_size (%s), got %q", FormatSize(cfg.Queue.SegmentSize), FormatSize(cfg.Queue.Reserve))
	}
	seenDomain := map[string]int{}
	for i, r := range cfg.Routes {
		p := fmt.Sprintf("route[%d]", i)
		if j, dup := seenDomain[r.Domain]; dup && r.Domain != "" {
			d.errf(p+".domain", "want each domain in one route, got %q again (first on line %d)", r.Domain, d.lines.lineOf(fmt.Sprintf("route[%d].domain", j)))
		} else {
			seenDomain[r.Domain] = i
		}
		if (r.AuthUser == "") != (r.AuthPasswordFile == "") {
			d.errf(p+".auth_user", "want auth_user and auth_password_file together, got only one")
		}
		if r.AuthUser != "" && r.TLS == TLSNone {
			d.errf(p+".tls", `want "may" or "required" with auth_user (no password in clear), got "none"`)
		}
		d.checkDANERoute(p, r, cfg.Delivery)
	}
}
