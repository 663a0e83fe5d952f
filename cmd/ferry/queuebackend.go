package main

import (
	"context"
	"fmt"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/queue"
)

// openQueue opens the queue backend the configuration names behind the
// queue contract: the segment log in the spool (the default).
func openQueue(_ context.Context, cfg config.Config, qc queue.Config) (queue.Store, error) {
	q, err := queue.Open(qc)
	if err != nil {
		return nil, fmt.Errorf("opening queue %s: %w", cfg.Queue.Spool, err)
	}
	return q, nil
}
