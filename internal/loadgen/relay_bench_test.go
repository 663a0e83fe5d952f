package loadgen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// startRelay runs Ferry's pipeline in process, wired as "ferry serve" wires
// it: smtpd → durable queue (group commit, fdatasync before every 250) →
// deliver → the next hop at hop. It returns the relay's SMTP address.
func startRelay(tb testing.TB, hop string) string {
	tb.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	qc := queue.DefaultConfig(tb.TempDir())
	qc.Logger = discard
	qc.HopConcurrency = 10 // as "ferry serve" sets it from [queue] hop_concurrency
	q, err := queue.Open(qc)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := route.ParseRouteFlag("*=[" + hostOf(hop) + "]:" + portOf(hop))
	if err != nil {
		tb.Fatal(err)
	}
	table, err := route.NewTable(route.Options{}, r)
	if err != nil {
		tb.Fatal(err)
	}
	agent, err := deliver.NewAgent(q, deliver.Config{
		Routes: table, HeloName: "relay.bench.invalid", Workers: 20, MaxConnsPerHop: 10,
		MaxMessagesPerConn: 100, IdleTimeout: 10 * time.Second, Timeouts: deliver.DefaultTimeouts(),
		Converter: deliver.NewDowngrader(downgrade.Options{}), Logger: discard,
	})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := smtpd.DefaultConfig()
	cfg.Hostname = "relay.bench.invalid"
	cfg.MaxConnections, cfg.MaxConnectionsPerIP = 0, 0
	cfg.Logger = discard
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := smtpd.New(cfg, q, nil)
	ctx, stop := context.WithCancel(context.Background())
	served, delivered := make(chan error, 1), make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	go func() { delivered <- agent.Run(ctx) }()
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
		stop()
		if err := <-delivered; err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("delivery: %v", err)
		}
		agent.Close()
		if err := q.Close(); err != nil {
			tb.Errorf("closing queue: %v", err)
		}
	})
	return l.Addr().String()
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// benchmarkPath sends b.N messages (at least 200, so a short -benchtime
// still measures something) of size octets over 20 sessions through target
// (the sink itself when relay is false) and reports end-to-end msgs/s and
// accepted msgs/s. Set-up is outside the timer.
func benchmarkPath(b *testing.B, relay bool, keywords []string, kind Kind, size int) {
	n := max(b.N, 200)
	runID := NewRunID()
	sink, err := StartSink(SinkOptions{RunID: runID, Messages: n, Keywords: keywords})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	target := sink.Addr()
	if relay {
		target = startRelay(b, sink.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	res, err := Run(ctx, Config{Target: target, Sessions: 20, Messages: n, Size: size, Kind: kind, RunID: runID, Deadline: time.Now().Add(4 * time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	if err := sink.Wait(ctx, res.Accepted); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := sink.Stats()
	if res.Accepted != n || st.Duplicates != 0 || sink.Missing(res.AcceptedSeqs) != 0 || st.EightBitWithout8BITMIME != 0 {
		b.Fatalf("accepted %d of %d, errors %v, sink %+v", res.Accepted, n, res.Errors, st)
	}
	b.ReportMetric(EndToEndRate(st.Distinct, res.FirstAccept, st.Last), "e2e_msgs/s")
	b.ReportMetric(res.AcceptRate(), "accepted_msgs/s")
	b.ReportMetric(float64(res.Latency.P99)/1e6, "p99_ms")
}

// BenchmarkRelayEndToEnd measures Ferry's whole relay path in process:
// 20 sessions × 4 KiB through smtpd, the durable queue and deliver to a
// counting sink.
func BenchmarkRelayEndToEnd(b *testing.B) { benchmarkPath(b, true, nil, KindASCII, 4096) }

// BenchmarkRelayEndToEnd64KiB is BenchmarkRelayEndToEnd with 64 KiB
// messages: the cost per octet of the relay path.
func BenchmarkRelayEndToEnd64KiB(b *testing.B) { benchmarkPath(b, true, nil, KindASCII, 64<<10) }

// BenchmarkRelayEndToEnd8BitDowngrade is BenchmarkRelayEndToEnd with 8-bit
// bodies and a next hop without 8BITMIME, so every message is converted
// to quoted-printable on the way out.
func BenchmarkRelayEndToEnd8BitDowngrade(b *testing.B) {
	benchmarkPath(b, true, []string{"PIPELINING", "SIZE", "ENHANCEDSTATUSCODES"}, Kind8Bit, 4096)
}

// BenchmarkDirectToSink is the baseline of the same run: the load
// generator straight into the counting sink, no relay between. The ratio
// of BenchmarkRelayEndToEnd to it is the share of the set-up's ceiling the
// relay reaches.
func BenchmarkDirectToSink(b *testing.B) { benchmarkPath(b, false, nil, KindASCII, 4096) }

// BenchmarkDirectToSink64KiB is the baseline of BenchmarkRelayEndToEnd64KiB.
func BenchmarkDirectToSink64KiB(b *testing.B) { benchmarkPath(b, false, nil, KindASCII, 64<<10) }
