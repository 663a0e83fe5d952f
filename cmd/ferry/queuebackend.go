package main

import (
	"context"
	"fmt"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/pgqueue"
	"github.com/ferrymta/ferry/internal/route"
)

// openQueue opens the queue backend the configuration names behind the
// queue contract: the segment log in the spool (the default), or the
// PostgreSQL queue shared by several relays. routes gives the shared
// queue each next hop's connection limit (a route's max_connections, else
// queue.hop_concurrency), which then holds across every relay together.
func openQueue(ctx context.Context, cfg config.Config, qc queue.Config, routes func() *route.Table) (queue.Store, error) {
	switch cfg.Queue.Backend {
	case "", config.BackendSegment:
		q, err := queue.Open(qc)
		if err != nil {
			return nil, err // the queue names itself and the spool, once
		}
		return q, nil
	case config.BackendPostgres:
		pc := pgqueue.Config{
			URL: cfg.Queue.URL, Node: qc.Node, Logger: qc.Logger,
			RetryInitial: qc.RetryInitial, RetryMax: qc.RetryMax, Jitter: qc.Jitter,
			Lifetime: qc.Lifetime, BounceLifetime: qc.BounceLifetime,
			LeaseTimeout: cfg.Queue.LeaseTimeout, HopConcurrency: qc.HopConcurrency,
			OnEvent: qc.OnEvent, OnCommit: qc.OnCommit,
			MaxBufferedBytes: qc.MaxBufferedBytes, MemoryWait: qc.MemoryWait,
			MaxConns: int32(max(32, 2*cfg.Delivery.Workers+8)),
			HopLimit: func(hop string) int {
				if t := routes(); t != nil {
					return t.Lookup(hop).Policy.MaxConnections
				}
				return 0
			},
		}
		q, err := pgqueue.Open(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("opening the shared queue: %w", err)
		}
		return q, nil
	}
	return nil, fmt.Errorf("queue.backend %q: want %q or %q", cfg.Queue.Backend, config.BackendSegment, config.BackendPostgres)
}
