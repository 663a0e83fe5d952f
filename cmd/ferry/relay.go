package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferrymta/ferry/internal/admin"
	"github.com/ferrymta/ferry/internal/auth"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtpd"
	"github.com/ferrymta/ferry/internal/tlspolicy"
)

// relayEnv is what serve needs besides the configuration.
type relayEnv struct {
	// flags are the command line's; they override the file, also after a
	// reload.
	flags  serveFlags
	logger *slog.Logger
	// level is the log level a reload changes; nil: the level is fixed.
	level  *slog.LevelVar
	stdout io.Writer
	// reloads carries reload requests (SIGHUP); a request's channel, when
	// not nil, receives the outcome.
	reloads <-chan chan error
}

// serve wires the pipeline: smtpd → queue → deliver, and runs it until ctx
// ends, then shuts down in the reverse order. Each request on env.reloads
// reloads the configuration (relay.reload).
func serve(ctx context.Context, cfg config.Config, env relayEnv) error {
	logger := env.logger
	f := env.flags
	table, err := buildRoutes(cfg, f.routes)
	if err != nil {
		return err
	}
	metrics := admin.NewMetrics()
	metrics.SetBuildInfo(version)
	logger = slog.New(metrics.Handler(logger.Handler()))
	policy, err := buildAccess(cfg, f)
	if err != nil {
		return err
	}
	transcripts, err := newTranscriptSwitch(cfg, logger)
	if err != nil {
		return err
	}
	// Each listener's settings, certificate and user file, before anything
	// starts: a missing file stops "ferry serve" at once.
	serverConfigs := make([]smtpd.Config, len(cfg.Listeners))
	var reloaders []reloader
	// One bound on password checks for all listeners: each argon2id check
	// holds its memory parameter while it runs.
	authGate := auth.NewGate(cfg.Limits.MaxAuthChecks, cfg.Timeouts.AuthCheckWait)
	for i, l := range cfg.Listeners {
		sc, rs, err := smtpdConfig(cfg, l, logger)
		if err != nil {
			return err
		}
		if sc.Auth != nil {
			sc.Auth = authGate.Wrap(sc.Auth)
		}
		sc.Trusted = policy.Trusted
		sc.TranscriptFor = transcripts.forListener(i)
		serverConfigs[i] = sc
		reloaders = append(reloaders, rs...)
	}
	if err := os.MkdirAll(cfg.Queue.Spool, 0o700); err != nil {
		return fmt.Errorf("creating spool: %w", err)
	}
	reportPut := newPutLater()
	notifier, err := newNotifier(cfg, logger, reportPut.Put)
	if err != nil {
		return fmt.Errorf("delivery status notifications: %w", err)
	}
	qc := queueConfig(cfg, logger)
	verifyMem := splitMemory(cfg, &qc)
	qc.OnEvent = notifier.OnEvent
	qc.OnCommit = metrics.ObserveCommit
	// The shared queue asks for each hop's connection limit in the routing
	// table in force: the agent's once it runs (reloads replace it).
	var running atomic.Pointer[deliver.Agent]
	q, err := openQueue(ctx, cfg, qc, func() *route.Table {
		if a := running.Load(); a != nil {
			return a.Routes()
		}
		return table
	})
	if err != nil {
		return err // the queue names itself and the spool
	}
	defer q.Close()
	backend := cfg.Queue.Backend
	if backend == "" {
		backend = config.BackendSegment
	}
	metrics.SetNode(qc.Node, backend)

	reportPut.set(reportPutFunc(q))
	dc, err := deliverConfig(cfg, table, logger)
	if err != nil {
		return err
	}
	keyring, err := loadKeyring(cfg)
	if err != nil {
		return err
	}
	dkimKeys := dkim.NewKeys(keyring)
	dc.Signer = dkimSigner(cfg, dkimKeys)
	store := receiptStore(cfg, q, verifyMem, logger)
	dc.OnRelayed = notifier.Relayed
	dc.Transcript = transcripts.outbound
	if eng, ok := dc.TLSPolicy.(*tlspolicy.Engine); ok {
		stopReports, err := startTLSReports(cfg, eng, q.Put, logger)
		if err != nil {
			return err
		}
		defer stopReports()
	}
	agent, err := deliver.NewAgent(q, dc)
	if err != nil {
		return fmt.Errorf("starting delivery: %w", err)
	}
	defer agent.Close()
	running.Store(agent)
	live := &relay{env: env, logger: logger, started: cfg, agent: agent, access: policy,
		transcripts: transcripts, reloaders: reloaders, dkimKeys: dkimKeys}

	var servers []*smtpd.Server
	var listeners []net.Listener
	for i, l := range cfg.Listeners {
		ln, err := listenSMTP(l.Address)
		if err != nil {
			for _, o := range listeners {
				o.Close()
			}
			return fmt.Errorf("listening on %s: %w", l.Address, err)
		}
		listeners = append(listeners, ln)
		servers = append(servers, smtpd.New(serverConfigs[i], store, policy))
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(servers)+1)
	var serving atomic.Int32
	var ready atomic.Bool
	h := admin.New(admin.Options{Queue: q, Hops: agent.Hops(), RouteTable: agent.Routes, Metrics: metrics, Logger: logger,
		Spool:       cfg.Queue.Spool,
		Transcripts: transcripts,
		Listeners: func() error {
			if n := int(serving.Load()); n != len(servers) {
				return fmt.Errorf("%d of %d SMTP listeners up", n, len(servers))
			}
			return nil
		},
		Ready: func() error {
			if !ready.Load() {
				return errors.New("starting or shutting down")
			}
			return nil
		}})
	adminLns, err := startAdmin(cfg, h, logger, env.stdout)
	if err != nil {
		for _, o := range listeners {
			o.Close()
		}
		return err
	}
	deliverCtx, stopDeliver := context.WithCancel(context.Background())
	defer stopDeliver()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := agent.Run(deliverCtx); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("delivery: %w", err)
		}
	}()
	for i, s := range servers {
		wg.Add(1)
		serving.Add(1)
		go func(s *smtpd.Server, ln net.Listener) {
			defer wg.Done()
			defer serving.Add(-1)
			if err := s.Serve(ln); err != nil && !errors.Is(err, smtpd.ErrServerClosed) {
				errc <- fmt.Errorf("listener %s: %w", ln.Addr(), err)
			}
		}(s, listeners[i])
		logger.Info("listening", "addr", listeners[i].Addr().String())
		fmt.Fprintf(env.stdout, "ferry serve: listening on %s\n", listeners[i].Addr())
	}
	configName := f.configFile
	if configName == "" {
		configName = "(built-in defaults)"
	}
	logger.Info("ferry started", "hostname", cfg.Hostname, "config", configName, "spool", cfg.Queue.Spool, "routes", len(cfg.Routes)+len(f.routes))
	warnShortHostname(cfg.Hostname, logger)

	ready.Store(true)
	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down", "grace", shutdownGrace)
			break wait
		case runErr = <-errc:
			break wait
		case done := <-env.reloads:
			err := live.reload()
			if done != nil {
				done <- err
			}
		}
	}
	ready.Store(false)
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	defer adminLns.close()
	// Delivery and the listeners wind down together, each within the
	// grace time: no new leases, no new sessions, transfers in progress
	// finish. Messages accepted meanwhile are safe in the queue.
	stopDeliver()
	for _, s := range servers {
		if err := s.Shutdown(shutCtx); err != nil {
			logger.Warn("listener shutdown", "err", err)
		}
	}
	wg.Wait()
	return runErr
}

// warnShortHostname warns at start about a host name without a dot: Ferry
// says it in EHLO, the 220 greeting, Received: fields, Message-IDs and
// reports, and RFC 5321 §4.1.1.1 wants a fully qualified domain name there
// (many servers refuse "EHLO vm"), as Postfix's myhostname does.
func warnShortHostname(hostname string, logger *slog.Logger) {
	if strings.Contains(strings.Trim(hostname, "."), ".") {
		return
	}
	logger.Warn("hostname "+strconv.Quote(hostname)+" is not a fully qualified domain name; next hops may refuse its EHLO: set hostname in the configuration (or --hostname)",
		"hostname", hostname)
}

// listenSMTP listens on a TCP address for SMTP. Accepted connections get
// no TCP keep-alive probes: every session phase has its own idle timeout
// (RFC 5321 §4.5.3.2), which finds a vanished client, and leaving the
// probes off saves four setsockopt(2) calls per connection.
func listenSMTP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
}
