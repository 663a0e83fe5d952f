package main

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/auth"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// This file maps the configuration onto each stage's own Config: every
// package keeps its own settings type, and only main knows both sides.

// reloader is a file a listener reads that SIGHUP reads again: its
// certificate or its user file.
type reloader struct {
	// listener is the listener's address, what the file is ("certificate",
	// "users file") and file its name, for the log.
	listener, what, file string
	reload               func() error
}

// smtpdConfig builds one listener's server settings, opening its
// certificate and user file; the reloaders are those files, for SIGHUP.
func smtpdConfig(cfg config.Config, l config.Listener, logger *slog.Logger) (smtpd.Config, []reloader, error) {
	c := smtpd.DefaultConfig()
	c.Hostname = cfg.Hostname
	c.Keywords = l.Keywords
	c.MaxMessageSize = l.MaxMessageSize
	c.MaxRecipients = l.MaxRecipients
	c.BareNewline = smtp.BareNormalize
	if l.BareNewline == config.BareReject {
		c.BareNewline = smtp.BareReject
	}
	c.TranscriptDir = l.TranscriptDir
	c.MaxConnections = cfg.Limits.MaxConnections
	c.MaxConnectionsPerIP = cfg.Limits.MaxConnectionsPerIP
	c.MaxErrors = cfg.Limits.MaxErrors
	c.MaxReceived = cfg.Limits.MaxReceived
	c.Timeouts.Greeting = cfg.Timeouts.Greeting
	c.Timeouts.Command = cfg.Timeouts.Command
	c.Timeouts.Data = cfg.Timeouts.DataBlock
	c.Timeouts.DataTotal = cfg.Timeouts.DataTotal
	c.Timeouts.HelloPhase = cfg.Timeouts.HelloPhase
	c.Timeouts.EnvelopePhase = cfg.Timeouts.EnvelopePhase
	c.Timeouts.PregreetWait = cfg.Timeouts.PregreetWait
	c.ReservedConnections = cfg.Limits.ReservedConnections
	c.Logger = logger
	if cfg.DSN.Postmaster != "" {
		pm, err := smtp.ParseAddress(cfg.DSN.Postmaster)
		if err != nil {
			return c, nil, fmt.Errorf("dsn.postmaster %q: %w", cfg.DSN.Postmaster, err)
		}
		c.Postmaster = pm
	}
	var reloaders []reloader
	if l.TLSCert != "" || l.TLSKey != "" {
		cs, err := smtpd.NewCertStore(l.TLSCert, l.TLSKey)
		if err != nil {
			return c, nil, fmt.Errorf("listener %s: loading tls_cert %s and tls_key %s: %w", l.Address, l.TLSCert, l.TLSKey, err)
		}
		c.TLS = cs.TLSConfig()
		reloaders = append(reloaders, reloader{l.Address, "certificate", l.TLSCert, cs.Reload})
	}
	c.RequireTLS = l.RequireTLS
	c.ImplicitTLS = l.ImplicitTLS
	c.AllowInsecureAuth = l.AllowInsecureAuth
	if l.AuthUsersFile != "" {
		users, err := auth.OpenFile(l.AuthUsersFile)
		if err != nil {
			return c, nil, fmt.Errorf("listener %s: loading auth_users_file %s: %w", l.Address, l.AuthUsersFile, err)
		}
		c.Auth = users
		reloaders = append(reloaders, reloader{l.Address, "users file", l.AuthUsersFile, users.Reload})
	}
	if err := c.Validate(); err != nil {
		return c, nil, fmt.Errorf("listener %s: %w", l.Address, err)
	}
	return c, reloaders, nil
}

// queueConfig builds the queue's settings from [queue].
func queueConfig(cfg config.Config, logger *slog.Logger) queue.Config {
	c := queue.DefaultConfig(cfg.Queue.Spool)
	c.Logger = logger
	c.RetryInitial = cfg.Queue.RetryInitial
	c.RetryMax = cfg.Queue.RetryMax
	c.Lifetime = cfg.Queue.Lifetime
	c.BounceLifetime = cfg.Queue.BounceLifetime
	c.HopConcurrency = cfg.Queue.HopConcurrency
	c.SegmentSize = cfg.Queue.SegmentSize
	c.Reserve = cfg.Queue.Reserve
	c.Node = cfg.Queue.Node
	if c.Node == "" {
		c.Node = cfg.Hostname
	}
	return c
}

// deliverConfig builds the delivery agent's settings from [delivery],
// reading tls_ca_file when one is set.
func deliverConfig(cfg config.Config, table *route.Table, logger *slog.Logger) (deliver.Config, error) {
	d := cfg.Delivery
	var roots *x509.CertPool
	if d.TLSCAFile != "" {
		var err error
		if roots, err = loadCAFile(d.TLSCAFile); err != nil {
			return deliver.Config{}, fmt.Errorf("delivery.tls_ca_file: %w", err)
		}
	}
	t := deliver.DefaultTimeouts()
	t.Connect = d.Timeouts.Connect
	t.Greeting = d.Timeouts.Greeting
	t.Mail = d.Timeouts.Mail
	t.Rcpt = d.Timeouts.Rcpt
	t.DataInit = d.Timeouts.DataInit
	t.DataBlock = d.Timeouts.DataBlock
	t.DataTerm = d.Timeouts.DataDone
	name := d.EHLOName
	if name == "" {
		name = cfg.Hostname
	}
	idle := d.IdleTimeout
	if idle == 0 {
		idle = time.Nanosecond // "0s" closes at once; deliver takes 0 for its default
	}
	pol, err := newTLSPolicy(cfg, logger)
	if err != nil {
		return deliver.Config{}, err
	}
	return deliver.Config{
		TLSPolicy:          pol,
		Routes:             table,
		HeloName:           name,
		Workers:            d.Workers,
		MaxConnsPerHop:     cfg.Queue.HopConcurrency,
		MaxMessagesPerConn: d.MaxMessagesPerConnection,
		IdleTimeout:        idle,
		ShutdownGrace:      shutdownGrace,
		Timeouts:           t,
		Converter:          deliver.NewDowngrader(downgrade.Options{}),
		Logger:             logger,
		RootCAs:            roots,
	}, nil
}

// loadCAFile reads a PEM file of CA certificates into a pool; a file that
// holds no certificate is an error, so that a wrong file is not silently
// an empty trust store.
func loadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}

// buildRoutes builds the routing table from [[route]], the smart host and
// the --route flags; a flag replaces a configured route for the same
// domain pattern.
func buildRoutes(cfg config.Config, flagRoutes []string) (*route.Table, error) {
	var routes []route.Route
	index := map[string]int{}
	add := func(r route.Route) {
		key := strings.ToLower(r.Pattern)
		if i, ok := index[key]; ok {
			routes[i] = r
			return
		}
		index[key] = len(routes)
		routes = append(routes, r)
	}
	for _, cr := range cfg.Routes {
		if len(cr.NextHops) == 0 {
			cr.NextHops = cfg.Delivery.SmarthostHops
		}
		r, err := routeFromConfig(cr)
		if err != nil {
			return nil, err
		}
		add(r)
	}
	for _, s := range flagRoutes {
		r, err := route.ParseRouteFlag(s)
		if err != nil {
			return nil, fmt.Errorf("--route %q: %w", s, err)
		}
		add(r)
	}
	res, err := newResolver(cfg)
	if err != nil {
		return nil, err
	}
	opts := route.Options{Resolver: res, MXPort: cfg.Delivery.TLSPolicy.MXPort}
	if _, ok := index["*"]; !ok {
		opts.SmartHost = cfg.Delivery.SmarthostHops
	}
	return route.NewTable(opts, routes...)
}

// routeFromConfig converts one [[route]] table; a route without next hops
// delivers by MX lookup.
func routeFromConfig(cr config.Route) (route.Route, error) {
	r := route.Route{Pattern: cr.Domain, Hops: cr.NextHops}
	p := &r.Policy
	var err error
	if cr.EightBit != "" {
		if p.EightBit, err = route.ParseAction(cr.EightBit); err != nil {
			return r, fmt.Errorf("route %s: eightbit: %w", cr.Domain, err)
		}
	}
	if cr.DKIMSigned != "" {
		if p.DKIMSigned, err = route.ParseDKIMAction(cr.DKIMSigned); err != nil {
			return r, fmt.Errorf("route %s: dkim_signed: %w", cr.Domain, err)
		}
	}
	if cr.TLS != "" {
		if p.TLS, err = route.ParseTLSMode(cr.TLS); err != nil {
			return r, fmt.Errorf("route %s: tls: %w", cr.Domain, err)
		}
	}
	p.EHLOName = cr.EHLOName
	p.DKIMKey = cr.DKIMKey
	p.DiscardKeywords = cr.DiscardKeywords
	p.MaxConnections = cr.MaxConnections
	p.MaxMessagesPerConnection = cr.MaxMessagesPerConnection
	if cr.AuthUser != "" {
		pw, err := os.ReadFile(cr.AuthPasswordFile)
		if err != nil {
			return r, fmt.Errorf("route %s: reading auth_password_file: %w", cr.Domain, err)
		}
		p.Auth = &route.Credentials{Username: cr.AuthUser, Password: strings.TrimRight(string(pw), "\r\n")}
	}
	return r, nil
}
