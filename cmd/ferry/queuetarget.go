package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/ferrymta/ferry/internal/admin"
	"github.com/ferrymta/ferry/internal/config"
)

// adminTarget names the queue an admin command acts on: the flags shared
// by "ferry queue", "ferry explain" and "ferry log".
type adminTarget struct {
	addr      string
	config    string
	spool     string
	tokenFile string
}

// register adds --admin, --config, --spool and --token-file to fs, keeping
// the values already set (by flags before a "ferry queue" command).
func (a *adminTarget) register(fs *flag.FlagSet) {
	fs.StringVar(&a.addr, "admin", a.addr, "admin API `address` of the running server (host:port or a Unix socket path); no other server is tried")
	fs.StringVar(&a.config, "config", a.config, "the server's TOML configuration `file` (default: $FERRY_CONFIG, else /etc/ferry/ferry.toml when it exists)")
	fs.StringVar(&a.spool, "spool", a.spool, "the server's spool `directory` (default: queue.spool of the configuration)")
	fs.StringVar(&a.tokenFile, "token-file", a.tokenFile, "`file` with the bearer token of a TCP admin address (default: the server's admin.token_file)")
}

// connect returns a client for the queue the flags name, and says on
// stderr which one answers. With --admin it is that server alone.
// Otherwise it is the spool (--spool, else the configuration's): the
// server that recorded its address there (and answers for that spool),
// or, when offline is set and no server runs on the spool, the spool
// itself, opened under its lock (close releases it). It never tries
// another server.
func (a *adminTarget) connect(ctx context.Context, offline bool, stderr io.Writer) (cl *admin.Client, close func(), err error) {
	nop := func() {}
	var cfg config.Config
	cfgLoaded := false
	loadCfg := func() error {
		if cfgLoaded {
			return nil
		}
		c, err := loadServeConfig(serveFlags{configFile: a.config, spool: a.spool})
		if err != nil {
			return err
		}
		cfg, cfgLoaded = c, true
		return nil
	}
	token := func(addr, file string) (string, error) {
		if admin.IsUnixSocket(addr) {
			return "", nil
		}
		if a.tokenFile != "" {
			file = a.tokenFile
		}
		if file == "" {
			if err := loadCfg(); err != nil {
				return "", err
			}
			file = cfg.Admin.TokenFile
		}
		if file == "" {
			return "", fmt.Errorf("the admin API at %s needs a bearer token: give --token-file FILE (or admin.token_file in the configuration)", addr)
		}
		return admin.ReadToken(file)
	}
	if a.addr != "" {
		tok, err := token(a.addr, "")
		if err != nil {
			return nil, nop, err
		}
		c := admin.NewClient(a.addr).WithToken(tok)
		what := "the server at " + a.addr
		if a.spool != "" {
			c.ExpectSpool(a.spool)
			what += " (spool " + a.spool + ")"
		}
		if err := c.Ping(ctx); err != nil {
			return nil, nop, err
		}
		fmt.Fprintf(stderr, "ferry: %s answers\n", what)
		return c, nop, nil
	}
	if err := loadCfg(); err != nil {
		return nil, nop, err
	}
	spool := cfg.Queue.Spool
	if fi, err := os.Stat(spool); err != nil || !fi.IsDir() {
		return nil, nop, fmt.Errorf("no spool directory %s (give --spool DIR or --config FILE of the server)", spool)
	}
	pub, perr := admin.ReadPublished(spool)
	if perr != nil && !errors.Is(perr, fs.ErrNotExist) {
		return nil, nop, fmt.Errorf("%w (run as the server's user or root)", perr)
	}
	if perr == nil {
		tok, err := token(pub.Addr, pub.TokenFile)
		if err != nil {
			return nil, nop, err
		}
		c := admin.NewClient(pub.Addr).WithToken(tok).ExpectSpool(spool)
		err = c.Ping(ctx)
		if err == nil {
			fmt.Fprintf(stderr, "ferry: the server at %s answers for the spool %s\n", pub.Addr, spool)
			return c, nop, nil
		}
		var nr *admin.NotRunningError
		if !errors.As(err, &nr) {
			return nil, nop, err
		}
		// A server that is gone left its address behind: the spool's
		// lock says whether one still runs.
	}
	if !offline {
		return nil, nop, fmt.Errorf("no ferry serve answers for the spool %s (not running, or its admin API is off)", spool)
	}
	if cfg.Queue.Backend == config.BackendPostgres {
		// The spool holds no queue: never work on it instead.
		return nil, nop, fmt.Errorf("no ferry serve answers for the spool %s, and the queue is the shared one in PostgreSQL (queue.backend = \"postgres\"): run ferry queue against any running relay with --admin ADDR", spool)
	}
	qc := queueConfig(cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	c, closeQ, err := admin.OpenSpool(qc)
	if err != nil {
		if perr == nil {
			return nil, nop, fmt.Errorf("no server answers at %s, and the spool %s cannot be opened directly: %w", pub.Addr, spool, err)
		}
		return nil, nop, fmt.Errorf("the spool %s is in use, but no server recorded an admin address there (is its admin API off?): %w", spool, err)
	}
	fmt.Fprintf(stderr, "ferry: no server runs on the spool %s: working on it directly (lock held)\n", spool)
	return c, func() { _ = closeQ() }, nil
}

// client returns a client for the running server the flags name (see
// connect), without the offline mode.
func (a *adminTarget) client() (*admin.Client, error) {
	ctx, cancel := queueCtx()
	defer cancel()
	c, _, err := a.connect(ctx, false, io.Discard)
	return c, err
}
