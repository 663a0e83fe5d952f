package queue_test

import (
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
)

// TestContract runs the queue contract suite against the segment log.
func TestContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, o queuetest.Options) queue.Store {
		cfg := queue.DefaultConfig(t.TempDir())
		cfg.Logger = queuetest.Quiet()
		cfg.Node = o.Node
		cfg.LeaseTimeout = o.LeaseTimeout
		cfg.RetryInitial, cfg.RetryMax, cfg.Jitter = o.RetryInitial, o.RetryInitial, -1
		cfg.Lifetime, cfg.BounceLifetime = o.Lifetime, o.Lifetime
		cfg.HopConcurrency = o.HopConcurrency
		cfg.OnEvent = o.OnEvent
		q, err := queue.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	})
}
