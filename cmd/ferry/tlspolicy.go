package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/tlspolicy"
)

// newResolver builds Ferry's DNS client from [delivery] resolvers and
// dnssec_resolver.
func newResolver(cfg config.Config) (*tlspolicy.Resolver, error) {
	p := cfg.Delivery.TLSPolicy
	r, err := tlspolicy.NewResolver(tlspolicy.ResolverConfig{Servers: p.Resolvers, DNSSEC: p.DNSSECResolver})
	if err != nil {
		return nil, fmt.Errorf("delivery.resolvers: %w", err)
	}
	return r, nil
}

// newTLSPolicy builds the outbound TLS policy engine (DANE, MTA-STS with
// its cache in the spool, TLS-RPT counts) for direct delivery, and DANE
// for the next hops of tls = "dane" routes.
func newTLSPolicy(cfg config.Config, logger *slog.Logger) (*tlspolicy.Engine, error) {
	r, err := newResolver(cfg)
	if err != nil {
		return nil, err
	}
	ec := tlspolicy.EngineConfig{Resolver: r, Logger: logger}
	sts, err := newSTS(cfg, r, logger, true)
	if err != nil {
		return nil, err
	}
	ec.STS = sts
	return tlspolicy.NewEngine(ec), nil
}

// newSTS builds the MTA-STS policy source, or nil when [delivery] mta_sts
// is off. Only the server (owner) writes the cache in the spool; probe and
// explain read it.
func newSTS(cfg config.Config, r *tlspolicy.Resolver, logger *slog.Logger, owner bool) (*tlspolicy.STS, error) {
	p := cfg.Delivery.TLSPolicy
	if !p.MTASTS {
		return nil, nil
	}
	sc := tlspolicy.STSConfig{Resolver: r, CacheDir: stsCacheDir(cfg), Port: p.MTASTSPort, Logger: logger, ReadOnly: !owner}
	if p.MTASTSCAFile != "" {
		roots, err := loadCAFile(p.MTASTSCAFile)
		if err != nil {
			return nil, fmt.Errorf("delivery.mta_sts_ca_file: %w", err)
		}
		sc.RootCAs = roots
	}
	sts, err := tlspolicy.NewSTS(sc)
	if err != nil {
		return nil, fmt.Errorf("delivery.mta_sts: %w", err)
	}
	return sts, nil
}

// stsCacheDir is where the MTA-STS policy cache lives: in the spool, so
// that it survives restarts with the queue.
func stsCacheDir(cfg config.Config) string { return filepath.Join(cfg.Queue.Spool, "mta-sts") }

// startTLSReports runs the daily TLS-RPT reports (RFC 8460) of eng's
// counts, mailed through put from <> or posted by HTTPS, unless [delivery]
// tls_reports is off. The returned function stops it.
func startTLSReports(cfg config.Config, eng *tlspolicy.Engine, put tlspolicy.PutFunc, logger *slog.Logger) (func(), error) {
	p := cfg.Delivery.TLSPolicy
	if !p.TLSReports {
		logger.Info("tlspolicy: TLS reports (RFC 8460) are off ([delivery] tls_reports = false)")
		return func() {}, nil
	}
	rc := tlspolicy.ReporterConfig{Engine: eng, Resolver: eng.Resolver(), Hostname: cfg.Hostname, Put: put, Logger: logger,
		Period: p.TLSReportPeriod, StateFile: filepath.Join(cfg.Queue.Spool, "tlsrpt-counts.json")}
	if p.MTASTSCAFile != "" {
		roots, err := loadCAFile(p.MTASTSCAFile)
		if err != nil {
			return nil, fmt.Errorf("delivery.mta_sts_ca_file: %w", err)
		}
		rc.RootCAs = roots
	}
	rep := tlspolicy.NewReporter(rc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep.Run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}
