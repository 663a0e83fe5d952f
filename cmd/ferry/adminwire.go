package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ferrymta/ferry/internal/admin"
	"github.com/ferrymta/ferry/internal/config"
)

// adminListeners are the running admin API and metrics listeners.
type adminListeners struct {
	servers []*http.Server
	spool   string
}

// startAdmin serves the admin API handler h where the configuration says
// (cfg.AdminAddress: by default the socket admin.sock in the spool; a TCP
// address needs the token of admin.token_file, and off loopback it logs a
// warning), and /metrics and /healthz alone on admin.metrics_listen. It
// records the address in the spool for "ferry queue" and prints "admin API
// on ADDR". The caller calls close at shutdown.
func startAdmin(cfg config.Config, h http.Handler, logger *slog.Logger, stdout io.Writer) (*adminListeners, error) {
	al := &adminListeners{spool: cfg.Queue.Spool}
	if addr := cfg.AdminAddress(); addr != "" {
		guard := admin.Guard{}
		pub := admin.Published{}
		if !admin.IsUnixSocket(addr) {
			tok, err := admin.LoadToken(cfg.Admin.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("admin API on %s: %w", addr, err)
			}
			guard.Token, pub.TokenFile = tok, cfg.Admin.TokenFile
		}
		ln, err := admin.Listen(addr)
		if err != nil {
			return nil, err
		}
		guard.Addr = admin.ListenerAddr(ln)
		pub.Addr = guard.Addr
		if !admin.IsUnixSocket(addr) && !config.IsLoopbackAddress(guard.Addr) {
			logger.Warn("admin API on a non-loopback address: anyone who can reach it and has the token controls the queue", "addr", guard.Addr)
		}
		al.serve(ln, admin.Protect(h, guard))
		if err := admin.WritePublished(cfg.Queue.Spool, pub); err != nil {
			logger.Warn("admin address file", "err", err)
		}
		logger.Info("admin API listening", "addr", guard.Addr)
		fmt.Fprintf(stdout, "ferry serve: admin API on %s\n", guard.Addr)
	}
	if m := cfg.Admin.MetricsListen; m != "" {
		ln, err := net.Listen("tcp", m)
		if err != nil {
			al.close()
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
		if !config.IsLoopbackAddress(ln.Addr().String()) {
			logger.Warn("metrics listener on a non-loopback address", "addr", ln.Addr().String())
		}
		al.serve(ln, admin.NewMetricsHandler(h))
		logger.Info("metrics listening", "addr", ln.Addr().String())
		fmt.Fprintf(stdout, "ferry serve: metrics on %s\n", ln.Addr())
	}
	return al, nil
}

// serve runs an HTTP server for h on ln.
func (al *adminListeners) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	al.servers = append(al.servers, srv)
	go srv.Serve(ln)
}

// close stops the listeners and removes the spool's address file.
func (al *adminListeners) close() {
	for _, s := range al.servers {
		_ = s.Shutdown(context.Background())
	}
	if len(al.servers) > 0 {
		_ = admin.RemoveAddrFile(al.spool)
	}
}
