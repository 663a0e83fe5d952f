package pgqueue

import (
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
)

// TestContract runs the queue contract suite against the shared queue, each
// case on a fresh database. Heartbeats are off: the contract's leases last
// as long as Renew keeps them (TestHeartbeat covers heartbeats).
func TestContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, o queuetest.Options) queue.Store {
		return openQueue(t, Config{URL: newDB(t), Node: o.Node, LeaseTimeout: o.LeaseTimeout, Heartbeat: -1,
			RetryInitial: o.RetryInitial, RetryMax: o.RetryInitial, Jitter: -1,
			Lifetime: o.Lifetime, BounceLifetime: o.Lifetime, HopConcurrency: o.HopConcurrency, OnEvent: o.OnEvent})
	})
}
