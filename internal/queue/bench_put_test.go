package queue_test

import (
	"fmt"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
)

// BenchmarkPut measures durable Put throughput and latency of the segment
// log with concurrent writers (queuetest.BenchPut: msgs/s, p50 and p99 in
// microseconds), on $FERRY_QUEUE_BENCH_DIR's disk when set.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, writers := range []int{1, 8, 32, 128} {
			b.Run(fmt.Sprintf("body=%dKiB/writers=%d", size>>10, writers), func(b *testing.B) {
				cfg := queue.DefaultConfig(queuetest.BenchDir(b, "FERRY_QUEUE_BENCH_DIR"))
				cfg.Logger = queuetest.Quiet()
				q, err := queue.Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer q.Close()
				queuetest.BenchPut(b, q, writers, size)
			})
		}
	}
}
