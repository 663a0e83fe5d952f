package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BenchConfig is a whole measurement: a load run, optionally with a
// counting sink at the far end and a server process whose CPU is measured.
type BenchConfig struct {
	// Load is the run. When Load.Target is empty and SinkListen is set,
	// the run targets the sink itself (the set-up's ceiling).
	Load Config
	// SinkListen, when set, starts a counting sink on this address.
	SinkListen string
	// SinkKeywords are the sink's EHLO keywords; nil: smtpd's default set.
	SinkKeywords []string
	// Expect is how many distinct messages the sink waits for; 0: as many
	// as the target accepted.
	Expect int
	// SinkMessages is the range of sequence numbers the sink counts,
	// 0..SinkMessages-1, when other clients of the run (Config.SeqBase)
	// send to it too; default Load.Messages.
	SinkMessages int
	// SinkTimeout bounds the wait for the sink after the run.
	SinkTimeout time.Duration
	// CPUPID, when positive, is a server process whose tree's CPU time is
	// measured across the run and the sink's wait.
	CPUPID int
}

// Bench runs one measurement and reports it.
func Bench(ctx context.Context, bc BenchConfig) (Report, error) {
	cfg := bc.Load.withDefaults()
	var sink *Sink
	if bc.SinkListen != "" {
		var err error
		if cfg.SeqBase != 0 {
			return Report{}, errors.New("bench: the client hosting the sink numbers its messages from 0 (SeqBase 0)")
		}
		sink, err = StartSink(SinkOptions{Addr: bc.SinkListen, Keywords: bc.SinkKeywords, RunID: cfg.RunID, Messages: max(cfg.Messages, bc.SinkMessages)})
		if err != nil {
			return Report{}, err
		}
		defer sink.Close()
		if cfg.Target == "" {
			cfg.Target = sink.Addr()
		}
	}
	if cfg.Target == "" {
		return Report{}, errors.New("bench: no target (give a target or a sink address)")
	}
	var cpu0 time.Duration
	if bc.CPUPID > 0 {
		var err error
		if cpu0, err = TreeCPU(bc.CPUPID); err != nil {
			return Report{}, fmt.Errorf("bench: measuring CPU: %w", err)
		}
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		return Report{}, err
	}
	rep := Report{
		Target: cfg.Target, Sessions: cfg.Sessions, Messages: cfg.Messages, PerConn: cfg.PerConn,
		Size: cfg.Size, Kind: cfg.Kind, Pipelining: cfg.Pipelining, Client: res, AcceptRate: res.AcceptRate(),
	}
	if sink != nil {
		expect := bc.Expect
		if expect <= 0 {
			expect = res.Accepted
		}
		sr := &SinkReport{Expected: expect}
		timeout := bc.SinkTimeout
		if timeout <= 0 {
			timeout = time.Minute
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		if err := sink.Wait(wctx, expect); err != nil {
			sr.WaitError = err.Error()
		}
		cancel()
		sr.SinkStats = sink.Stats()
		sr.Missing = sink.Missing(res.AcceptedSeqs)
		sr.Unexpected = sink.Unexpected(res.AcceptedSeqs)
		sr.EndToEndRate = EndToEndRate(sr.Distinct, res.FirstAccept, sr.Last)
		rep.Sink = sr
	}
	if bc.CPUPID > 0 {
		cpu1, err := TreeCPU(bc.CPUPID)
		if err != nil {
			return rep, fmt.Errorf("bench: measuring CPU: %w", err)
		}
		c := &CPUReport{PID: bc.CPUPID, Seconds: (cpu1 - cpu0).Seconds()}
		if res.Accepted > 0 {
			c.PerThousand = c.Seconds * 1000 / float64(res.Accepted)
		}
		rep.CPU = c
	}
	return rep, nil
}
