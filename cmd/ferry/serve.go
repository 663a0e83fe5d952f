package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/config"
)

// shutdownGrace is how long SIGTERM lets transfers in progress finish.
const shutdownGrace = 30 * time.Second

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return fmt.Sprint(*l) }
func (l *stringList) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}

// serveFlags are the flags of "ferry serve"; each overrides the file.
type serveFlags struct {
	configFile string
	listen     stringList
	spool      string
	queueURL   string
	hostname   string
	routes     stringList
	relayNets  stringList
	accept     stringList
	admin      string
	adminToken string
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.StringVar(&f.configFile, "config", "", "TOML configuration `file` (default: $FERRY_CONFIG, else /etc/ferry/ferry.toml when it exists, else the built-in defaults)")
	fs.Var(&f.listen, "listen", "SMTP listen `address` host:port (repeatable; replaces the configured listeners' addresses)")
	fs.StringVar(&f.spool, "spool", "", "queue spool `directory`")
	fs.StringVar(&f.queueURL, "queue-url", "", "PostgreSQL `URL` of a queue shared by several relays (postgres://user:password@host/database); sets queue.backend = \"postgres\"")
	fs.StringVar(&f.hostname, "hostname", "", "the relay's own `name` (greeting, Received:, DSNs)")
	fs.Var(&f.routes, "route", "route `DOMAIN=NEXTHOP[,NEXTHOP…]`, e.g. 'company.example=[127.0.0.1]:2526' or '*=[smarthost.example]:587' (repeatable; replaces a configured route for the same domain)")
	fs.Var(&f.relayNets, "relay-network", "client `CIDR` allowed to relay (repeatable; given at all, replaces the default loopback networks)")
	fs.Var(&f.accept, "accept-domain", "`domain` anyone may send to (repeatable)")
	fs.StringVar(&f.admin, "admin", "", "admin API `address`: an absolute Unix socket path, host:port (port 0 for any; needs a token file), or \"off\" (default: admin.address, else the socket admin.sock in the spool)")
	fs.StringVar(&f.adminToken, "admin-token-file", "", "`file` with the bearer token a TCP admin address requires (replaces admin.token_file)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry serve [flags]\n\nRuns the relay: SMTP listeners, the durable queue and delivery.\nThe configuration is --config FILE, else $FERRY_CONFIG, else\n/etc/ferry/ferry.toml when it exists, else the built-in defaults\n(see docs/config.md).\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "ferry serve: unexpected argument %q: give the configuration file as --config %s\n", pos[0], pos[0])
		return 2
	}
	var err error
	if f.configFile, err = configFile(f.configFile); err != nil {
		fmt.Fprintf(stderr, "ferry serve: %v\n", err)
		return 1
	}
	cfg, err := loadServeConfig(f)
	if err != nil {
		fmt.Fprintf(stderr, "ferry serve: %v\n", err)
		return 1
	}
	logger, level, logOut, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ferry serve: %v\n", err)
		return 1
	}
	defer logOut.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP asks for a reload (see relay.reload).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloads := make(chan chan error)
	go func() {
		for {
			select {
			case <-hup:
				reopenLog(logOut, logger) // logrotate renamed the file
				select {
				case reloads <- nil:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	env := relayEnv{flags: f, logger: logger, level: level, stdout: stdout, reloads: reloads}
	if err := serve(ctx, cfg, env); err != nil {
		// Said once where the operator looks: in the log file when there
		// is one, and always as a plain line on stderr (where a log without
		// a file would only repeat it).
		if cfg.Log.File != "" {
			logger.Error("ferry serve stopped", "err", err)
		}
		fmt.Fprintf(stderr, "ferry serve: %v\n", err)
		return 1
	}
	return 0
}

// loadServeConfig reads the file (--config, else what configFile finds,
// else the defaults) and applies the flags.
func loadServeConfig(f serveFlags) (config.Config, error) {
	cfg := config.Default()
	file, err := configFile(f.configFile)
	if err != nil {
		return cfg, err
	}
	if file != "" {
		if cfg, err = config.Load(file); err != nil {
			return cfg, err
		}
	}
	if f.hostname != "" {
		cfg.Hostname = f.hostname
	}
	if f.spool != "" {
		cfg.Queue.Spool = f.spool
	}
	if f.queueURL != "" {
		if err := config.CheckQueueURL(f.queueURL); err != nil {
			return cfg, fmt.Errorf("--queue-url: want a PostgreSQL URL (postgres://user@host/database): %w", err)
		}
		cfg.Queue.Backend, cfg.Queue.URL = config.BackendPostgres, f.queueURL
	}
	if f.admin != "" {
		cfg.Admin.Address = f.admin
	}
	if f.adminToken != "" {
		cfg.Admin.TokenFile = f.adminToken
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
