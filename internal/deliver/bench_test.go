package deliver

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/sink"
)

// BenchmarkDeliverSink measures delivery of 4 KiB messages over one reused
// connection to a sink on loopback.
func BenchmarkDeliverSink(b *testing.B) {
	_, rt := startSink(b, sink.Options{})
	q := newMemQueue()
	a, _ := testAgent(b, q, rt, func(c *Config) { c.MaxMessagesPerConn = 1 << 30 })
	body := "Subject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 64)
	it := testMessage("BENCH", body, "x@hop.test")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		a.DeliverLease(context.Background(), &queue.Lease{Hop: "hop.test", Items: []queue.Item{it}})
	}
	if r := q.last(b, "BENCH", 0); r.State != queue.Sent {
		b.Fatalf("last delivery: %v", r.Reply)
	}
}
