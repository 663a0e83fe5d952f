package queuetest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
)

// BenchPut measures durable Put throughput with writers concurrent writers
// of size-octet messages and reports msgs/s and the p50 and p99 latency in
// microseconds. It drives any queue.Intake, so every backend (and a
// baseline) is measured the same way in one run.
func BenchPut(b *testing.B, q queue.Intake, writers, size int) {
	body := Body("bench", size)[:size]
	lat := make([][]time.Duration, writers)
	var next atomic.Int64
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := q.Put(context.Background(), Env("s@example.org", "r@example.net"), bytes.NewReader(body)); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchDir returns a directory for a benchmark's spool on the disk under
// test: a fresh one under $env when that is set, else a temporary one.
func BenchDir(b *testing.B, env string) string {
	d := os.Getenv(env)
	if d == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(d, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Quiet returns a logger that drops everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
