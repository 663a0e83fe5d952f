package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/admin"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// shutdownGrace is how long SIGTERM lets transfers in progress finish.
const shutdownGrace = 30 * time.Second

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// serveFlags are the flags of "ferry serve"; each overrides the file.
type serveFlags struct {
	configFile string
	listen     stringList
	spool      string
	hostname   string
	routes     stringList
	relayNets  stringList
	accept     stringList
	admin      string
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.configFile, "config", "", "TOML configuration `file` (default: built-in defaults)")
	fs.Var(&f.listen, "listen", "SMTP listen `address` host:port (repeatable; replaces the configured listeners' addresses)")
	fs.StringVar(&f.spool, "spool", "", "queue spool `directory`")
	fs.StringVar(&f.hostname, "hostname", "", "the relay's own `name` (greeting, Received:, DSNs)")
	fs.Var(&f.routes, "route", "route `DOMAIN=NEXTHOP[,NEXTHOP…]`, e.g. 'company.example=[127.0.0.1]:2526' or '*=[smarthost.example]:587' (repeatable; replaces a configured route for the same domain)")
	fs.Var(&f.relayNets, "relay-network", "client `CIDR` allowed to relay (repeatable; given at all, replaces the default loopback networks)")
	fs.Var(&f.accept, "accept-domain", "`domain` anyone may send to (repeatable)")
	fs.StringVar(&f.admin, "admin", "", "admin API `address` (host:port, port 0 for any, or an absolute Unix socket path; \"off\" disables it)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry serve [flags]\n\nRuns the relay: SMTP listeners, the durable queue and delivery.\nWith no --config the built-in defaults apply (see docs/config.md).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := loadServeConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "ferry serve: %v\n", err)
		return 1
	}
	logger, closeLog, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ferry serve: %v\n", err)
		return 1
	}
	defer closeLog()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, f, logger, stdout); err != nil {
		logger.Error("ferry serve stopped", "err", err)
		fmt.Fprintf(stderr, "ferry serve: %v\n", err)
		return 1
	}
	return 0
}

// loadServeConfig reads the file (or the defaults) and applies the flags.
func loadServeConfig(f serveFlags) (config.Config, error) {
	cfg := config.Default()
	if f.configFile != "" {
		var err error
		if cfg, err = config.Load(f.configFile); err != nil {
			return cfg, err
		}
	}
	if f.hostname != "" {
		cfg.Hostname = f.hostname
	}
	if f.spool != "" {
		cfg.Queue.Spool = f.spool
	}
	switch f.admin {
	case "":
	case "off":
		cfg.Admin.Address = ""
	default:
		cfg.Admin.Address = f.admin
	}
	if len(f.listen) > 0 {
		tmpl := config.DefaultListener()
		if len(cfg.Listeners) > 0 {
			tmpl = cfg.Listeners[0]
		}
		cfg.Listeners = cfg.Listeners[:0]
		for _, a := range f.listen {
			l := tmpl
			l.Address = a
			cfg.Listeners = append(cfg.Listeners, l)
		}
	}
	return cfg, nil
}

// serve wires the pipeline: smtpd → queue → deliver, and runs it until ctx
// ends, then shuts down in the reverse order.
func serve(ctx context.Context, cfg config.Config, f serveFlags, logger *slog.Logger, stdout io.Writer) error {
	table, err := buildRoutes(cfg, f.routes)
	if err != nil {
		return err
	}
	metrics := admin.NewMetrics()
	logger = slog.New(metrics.Handler(logger.Handler()))
	policy, err := buildAccess(cfg, f)
	if err != nil {
		return err
	}
	// Each listener's settings, certificate and user file, before anything
	// starts: a missing file stops "ferry serve" at once.
	serverConfigs := make([]smtpd.Config, len(cfg.Listeners))
	var reloaders []reloader
	for i, l := range cfg.Listeners {
		sc, rs, err := smtpdConfig(cfg, l, logger)
		if err != nil {
			return err
		}
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
	qc.OnEvent = notifier.OnEvent
	q, err := queue.Open(qc)
	if err != nil {
		return fmt.Errorf("opening queue %s: %w", cfg.Queue.Spool, err)
	}
	defer q.Close()

	reportPut.set(q.Put)
	dc := deliverConfig(cfg, table, logger)
	dc.OnRelayed = notifier.Relayed
	agent, err := deliver.NewAgent(q, dc)
	if err != nil {
		return fmt.Errorf("starting delivery: %w", err)
	}
	defer agent.Close()

	var servers []*smtpd.Server
	var listeners []net.Listener
	for i, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			for _, o := range listeners {
				o.Close()
			}
			return fmt.Errorf("listening on %s: %w", l.Address, err)
		}
		listeners = append(listeners, ln)
		servers = append(servers, smtpd.New(serverConfigs[i], q, policy))
	}
	// SIGHUP reads the listeners' certificates and user files again; the
	// rest of the configuration (routes, relay access) needs a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var wg sync.WaitGroup
	errc := make(chan error, len(servers)+1)
	var serving atomic.Int32
	var ready atomic.Bool
	var adminSrv *http.Server
	if cfg.Admin.Address != "" {
		aln, err := admin.Listen(cfg.Admin.Address)
		if err != nil {
			for _, o := range listeners {
				o.Close()
			}
			return err
		}
		h := admin.New(admin.Options{Queue: q, Hops: agent.Hops(), Routes: table, Metrics: metrics, Logger: logger,
			Spool: cfg.Queue.Spool,
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
		adminSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go adminSrv.Serve(aln)
		addr := admin.ListenerAddr(aln)
		if err := admin.WriteAddrFile(cfg.Queue.Spool, addr); err != nil {
			logger.Warn("admin address file", "err", err)
		}
		defer admin.RemoveAddrFile(cfg.Queue.Spool)
		logger.Info("admin API listening", "addr", addr)
		fmt.Fprintf(stdout, "ferry serve: admin API on %s\n", addr)
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
		fmt.Fprintf(stdout, "ferry serve: listening on %s\n", listeners[i].Addr())
	}
	logger.Info("ferry started", "hostname", cfg.Hostname, "spool", cfg.Queue.Spool, "routes", len(cfg.Routes)+len(f.routes))

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
		case <-hup:
			logger.Info("SIGHUP: reloading certificates and user files")
			reloadFiles(reloaders, logger)
		}
	}
	ready.Store(false)
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if adminSrv != nil {
		defer adminSrv.Shutdown(context.Background())
	}
	for _, s := range servers {
		if err := s.Shutdown(shutCtx); err != nil {
			logger.Warn("listener shutdown", "err", err)
		}
	}
	stopDeliver()
	wg.Wait()
	return runErr
}
