package queue

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchDir returns a spool directory for benchmarks on the disk under test
// (see queuetest.BenchDir).
func benchDir(b *testing.B) string {
	if d := os.Getenv("FERRY_QUEUE_BENCH_DIR"); d != "" {
		return mkBenchDir(b, d)
	}
	return b.TempDir()
}

// mkBenchDir makes a directory under d removed when b ends.
func mkBenchDir(b *testing.B, d string) string {
	dir, err := os.MkdirTemp(d, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// BenchmarkRecovery measures Open on a spool of small queued messages
// ($FERRY_QUEUE_RECOVERY_N, default 100000; the target case is 1000000)
// and reports the index memory per queued message.
func BenchmarkRecovery(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("FERRY_QUEUE_RECOVERY_N")); err == nil && v > 0 {
		n = v
	}
	dir := benchDir(b)
	cfg := testConfig(dir, nil, nil)
	cfg.SegmentSize = 64 << 20
	q := mustOpen(b, cfg)
	body := bodyFor(1, 200)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(body)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	q.Close()
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t0 := time.Now()
		q := mustOpen(b, cfg)
		elapsed := time.Since(t0)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if len(q.msgs) != n {
			b.Fatalf("recovered %d messages, want %d", len(q.msgs), n)
		}
		b.ReportMetric(elapsed.Seconds(), "recovery-s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "index-B/msg")
		b.ReportMetric(float64(n), "messages")
		runtime.KeepAlive(q)
		q.Close()
	}
}
