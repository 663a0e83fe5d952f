package loadgen

import (
	"context"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// startSink starts a counting sink for a test and closes it at the end.
func startSink(t *testing.T, opts SinkOptions) *Sink {
	t.Helper()
	s, err := StartSink(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing sink: %v", err)
		}
	})
	return s
}

func TestRunIntoSink(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"ascii one per connection", Config{Sessions: 4, Messages: 40, Kind: KindASCII}},
		{"8bit three per connection pipelined", Config{Sessions: 3, Messages: 31, PerConn: 3, Kind: Kind8Bit, Pipelining: true}},
		{"binary 64KiB", Config{Sessions: 2, Messages: 6, PerConn: 2, Kind: KindBinary, Size: 64 << 10}},
		{"more sessions than messages", Config{Sessions: 10, Messages: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.RunID = "r" + NewRunID()
			cfg.Deadline = time.Now().Add(20 * time.Second)
			s := startSink(t, SinkOptions{RunID: cfg.RunID, Messages: cfg.Messages})
			cfg.Target = s.Addr()
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != cfg.Messages || res.Failed != 0 || len(res.Errors) != 0 {
				t.Fatalf("accepted %d failed %d errors %v; want all %d", res.Accepted, res.Failed, res.Errors, cfg.Messages)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Wait(ctx, cfg.Messages); err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if st.Distinct != int64(cfg.Messages) || st.Duplicates != 0 || st.Foreign != 0 || st.EightBitWithout8BITMIME != 0 {
				t.Errorf("sink stats %+v", st)
			}
			if m := s.Missing(res.AcceptedSeqs); m != 0 {
				t.Errorf("missing %d", m)
			}
			perConn := max(cfg.PerConn, 1)
			if minConns := (cfg.Messages + perConn - 1) / perConn; res.Connections < minConns {
				t.Errorf("%d connections for %d messages at %d per connection", res.Connections, cfg.Messages, perConn)
			}
			if res.Latency.Count != cfg.Messages || res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 {
				t.Errorf("latency %+v", res.Latency)
			}
			if res.AcceptRate() <= 0 || res.FirstAccept.IsZero() || res.LastAccept.Before(res.FirstAccept) {
				t.Errorf("rate %v first %v last %v", res.AcceptRate(), res.FirstAccept, res.LastAccept)
			}
		})
	}
}

func TestSinkCountsDuplicatesAndForeign(t *testing.T) {
	const runID, n = "dup", 10
	s := startSink(t, SinkOptions{RunID: runID, Messages: n})
	cfg := Config{Target: s.Addr(), Sessions: 2, Messages: n, RunID: runID, Deadline: time.Now().Add(20 * time.Second)}
	for range 2 { // the same run twice: the second copy of each is a duplicate
		if res, err := Run(context.Background(), cfg); err != nil || res.Accepted != n {
			t.Fatalf("run: %d accepted, %v", res.Accepted, err)
		}
	}
	other := cfg
	other.RunID = "other"
	if res, err := Run(context.Background(), other); err != nil || res.Accepted != n {
		t.Fatalf("other run: %d accepted, %v", res.Accepted, err)
	}
	st := s.Stats()
	if st.Received != 2*n || st.Distinct != n || st.Duplicates != n || st.Foreign != n {
		t.Errorf("stats %+v; want received %d distinct %d duplicates %d foreign %d", st, 2*n, n, n, n)
	}
	accepted := make([]bool, n)
	for i := range accepted {
		accepted[i] = i%2 == 0
	}
	if u := s.Unexpected(accepted); u != n/2 {
		t.Errorf("unexpected %d; want %d", u, n/2)
	}
	if m := s.Missing(append(accepted, true)); m != 1 {
		t.Errorf("missing %d; want 1", m)
	}
}

func TestSinkFlagsEightBitWithoutBody8BitMIME(t *testing.T) {
	// A sink without 8BITMIME: the client sends 8-bit content without
	// BODY=8BITMIME, which a relay must never do (RFC 6152 §3).
	const n = 5
	s := startSink(t, SinkOptions{RunID: "e", Messages: n, Keywords: []string{"PIPELINING", "SIZE", "ENHANCEDSTATUSCODES"}})
	res, err := Run(context.Background(), Config{Target: s.Addr(), Messages: n, Kind: Kind8Bit, RunID: "e", Deadline: time.Now().Add(20 * time.Second)})
	if err != nil || res.Accepted != n {
		t.Fatalf("%d accepted, %v", res.Accepted, err)
	}
	if got := s.Stats().EightBitWithout8BITMIME; got != n {
		t.Errorf("8-bit without BODY=8BITMIME: %d; want %d", got, n)
	}
}

// flakyStore refuses every third message with 451 and keeps nothing.
type flakyStore struct{ n atomic.Int64 }

func (f *flakyStore) NewID() string { return "F" + time.Now().Format("150405.000000") }

func (f *flakyStore) Put(_ context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return "", err
	}
	if f.n.Add(1)%3 == 0 {
		return "", &smtpd.ReplyError{Reply: smtp.NewReply(451, "4.3.0", "try later")}
	}
	return env.ID, nil
}

// refuseRcpt refuses every recipient at one domain.
type refuseRcpt struct{ smtpd.AcceptAll }

func (refuseRcpt) Rcpt(_ smtpd.SessionInfo, to smtp.Path, _ smtp.Params) *smtpd.Refusal {
	return &smtpd.Refusal{Reply: smtp.NewReply(550, "5.1.1", "no such user")}
}

// startServer runs an smtpd server for a test.
func startServer(t *testing.T, store smtpd.Store, policy smtpd.Policy) string {
	t.Helper()
	cfg := smtpd.DefaultConfig()
	cfg.Hostname = "test.invalid"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtpd.New(cfg, store, policy)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return l.Addr().String()
}

func TestRunCountsErrorsByReply(t *testing.T) {
	addr := startServer(t, &flakyStore{}, nil)
	for _, pipelining := range []bool{false, true} {
		res, err := Run(context.Background(), Config{Target: addr, Sessions: 3, Messages: 30, PerConn: 5, Pipelining: pipelining, Deadline: time.Now().Add(20 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Attempted != 30 || res.Accepted != 20 || res.Errors["451 4.3.0"] != 10 || len(res.Errors) != 1 {
			t.Errorf("pipelining %v: attempted %d accepted %d errors %v; want 30, 20, {451 4.3.0: 10}", pipelining, res.Attempted, res.Accepted, res.Errors)
		}
	}
	addr = startServer(t, &flakyStore{}, refuseRcpt{})
	for _, pipelining := range []bool{false, true} {
		res, err := Run(context.Background(), Config{Target: addr, Sessions: 2, Messages: 8, PerConn: 4, Pipelining: pipelining, Deadline: time.Now().Add(20 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		// After a refused RCPT the pipelined DATA gets 554 (no valid
		// recipients); the message counts once, under the first failure.
		if res.Accepted != 0 || res.Errors["550 5.1.1"] != 8 || len(res.Errors) != 1 {
			t.Errorf("pipelining %v: accepted %d errors %v; want 0, {550 5.1.1: 8}", pipelining, res.Accepted, res.Errors)
		}
	}
}

func TestRunIsBounded(t *testing.T) {
	// Nothing listens: every message fails to connect, once.
	closed := testrelay.RefusedAddr(t)
	res, err := Run(context.Background(), Config{Target: closed, Sessions: 4, Messages: 12, Deadline: time.Now().Add(20 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempted != 12 || res.Errors["connect"] != 12 {
		t.Errorf("closed port: attempted %d errors %v", res.Attempted, res.Errors)
	}

	// A server that accepts and never greets: the deadline ends the run.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for range 100 { // bounded: the test opens 2
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	begin := time.Now()
	res, err = Run(context.Background(), Config{Target: mute.Addr().String(), Sessions: 2, Messages: 1000, Deadline: time.Now().Add(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > time.Minute {
		t.Errorf("run took %v past a 300ms deadline", took)
	}
	// The run's deadline and the connection's I/O deadline fire together;
	// either may be the one that ends a session.
	if res.Accepted != 0 || res.Attempted != 2 || res.Errors["deadline"]+res.Errors["io"] != 2 {
		t.Errorf("mute server: attempted %d accepted %d errors %v", res.Attempted, res.Accepted, res.Errors)
	}
	if _, err := Run(context.Background(), Config{Target: closed}); err == nil {
		t.Error("Run without Messages and Deadline succeeded")
	}
}

func TestBenchWithSink(t *testing.T) {
	addr := startServer(t, &flakyStore{}, nil) // not a relay: nothing reaches the sink
	rep, err := Bench(context.Background(), BenchConfig{
		Load:       Config{Target: addr, Messages: 6, Deadline: time.Now().Add(20 * time.Second)},
		SinkListen: "127.0.0.1:0", SinkTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sink == nil || rep.Sink.Missing != 4 || rep.Sink.WaitError == "" || rep.Sink.EndToEndRate != 0 {
		t.Errorf("sink report %+v; want 4 missing and a wait error", rep.Sink)
	}
	// Baseline: no target, the run drives the sink itself.
	rep, err = Bench(context.Background(), BenchConfig{
		Load:       Config{Messages: 20, Sessions: 2, Deadline: time.Now().Add(20 * time.Second)},
		SinkListen: "127.0.0.1:0", CPUPID: os.Getpid(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sink.Distinct != 20 || rep.Sink.Missing != 0 || rep.Sink.EndToEndRate <= 0 || rep.CPU == nil || rep.CPU.Seconds < 0 {
		t.Errorf("baseline report sink %+v cpu %+v", rep.Sink, rep.CPU)
	}
}

func TestOpenIdle(t *testing.T) {
	s := startSink(t, SinkOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idle := OpenIdle(ctx, s.Addr(), 25, 5, 5*time.Second)
	defer idle.Close()
	if idle.Held() != 25 || idle.Failed != 0 {
		t.Errorf("held %d failed %d (%v)", idle.Held(), idle.Failed, idle.FirstError)
	}
}
