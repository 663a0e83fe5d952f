package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/loadgen"
)

// benchFlags are the flags of "ferry bench".
type benchFlags struct {
	target, size, kind, sinkListen, sinkKeywords, runID string
	sessions, messages, perConn, expect, cpuPID         int
	seqBase, sinkMessages                               int
	idle, idleParallel, serverPID                       int
	pipelining, jsonOut                                 bool
	deadline, sinkTimeout, ioTimeout, idleSettle        time.Duration
}

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f benchFlags
	fs.StringVar(&f.target, "target", "", "SMTP server `address` host:port to drive (default with --sink-listen: the sink itself)")
	fs.IntVar(&f.sessions, "sessions", 20, "parallel `sessions`")
	fs.IntVar(&f.messages, "messages", 1000, "messages to send in all (each tried once)")
	fs.StringVar(&f.size, "size", "4KiB", "message `size`, e.g. 4096, 4KiB, 64KiB, 1MiB")
	fs.StringVar(&f.kind, "kind", "ascii", "body `kind`: ascii, 8bit (UTF-8 text, BODY=8BITMIME) or binary (base64 attachment)")
	fs.IntVar(&f.perConn, "per-conn", 1, "messages per connection")
	fs.BoolVar(&f.pipelining, "pipelining", false, "send MAIL, RCPT and DATA in one write when the server offers PIPELINING")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&f.sinkListen, "sink-listen", "", "run a counting sink on `address` and report end-to-end throughput")
	fs.StringVar(&f.sinkKeywords, "sink-keywords", "", "the sink's EHLO `keywords`, comma-separated (default: Ferry's default set; leave out 8BITMIME to play a 7-bit hop)")
	fs.IntVar(&f.expect, "expect", 0, "distinct messages the sink waits for (default: as many as were accepted)")
	fs.DurationVar(&f.sinkTimeout, "sink-timeout", time.Minute, "how long the sink waits for the expected messages after the run")
	fs.DurationVar(&f.deadline, "deadline", 5*time.Minute, "global deadline of the whole run, sink wait included")
	fs.DurationVar(&f.ioTimeout, "io-timeout", time.Minute, "timeout of each read or write")
	fs.IntVar(&f.cpuPID, "cpu-pid", 0, "measure the CPU time of this server `pid` and its descendants across the run")
	fs.StringVar(&f.runID, "run-id", "", "tag of this run's messages (default: from the clock)")
	fs.IntVar(&f.seqBase, "seq-base", 0, "number this client's messages from `N` (several clients of one --run-id, one per relay, sending to one sink)")
	fs.IntVar(&f.sinkMessages, "sink-messages", 0, "the sink counts sequence numbers 0..`N`-1 of the run, other clients' (--seq-base) included (default --messages)")
	fs.IntVar(&f.idle, "idle", 0, "instead of sending mail, hold this many idle sessions (after EHLO) and report the server's memory per session")
	fs.IntVar(&f.idleParallel, "idle-parallel", 200, "sessions set up at once in --idle mode")
	fs.IntVar(&f.serverPID, "server-pid", 0, "server `pid` whose resident memory --idle reads")
	fs.DurationVar(&f.idleSettle, "idle-settle", 2*time.Second, "how long --idle waits with the sessions open before reading memory")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry bench [flags]\n\nDrives an SMTP server with parallel sessions and reports accepted msgs/s, latency\npercentiles (MAIL to final 250) and errors by reply; with --sink-listen it also plays\nthe next hop and reports end-to-end msgs/s, duplicates and missing messages.\nSee docs/performance.md.\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 0, 0, "") {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.deadline)
	defer cancel()
	if f.idle > 0 {
		return benchIdle(ctx, f, stdout, stderr)
	}
	bc, err := benchConfig(f)
	if err != nil {
		printError(stderr, "bench", err)
		return 2
	}
	rep, err := loadgen.Bench(ctx, bc)
	if err != nil {
		printError(stderr, "bench", err)
		return 1
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			printError(stderr, "bench", err)
			return 1
		}
	} else {
		rep.WriteText(stdout)
	}
	if rep.Client.Accepted == 0 || (rep.Sink != nil && (rep.Sink.Missing > 0 || rep.Sink.Duplicates > 0)) {
		return 1
	}
	return 0
}

// benchConfig turns the flags into a measurement.
func benchConfig(f benchFlags) (loadgen.BenchConfig, error) {
	size, err := loadgen.ParseSize(f.size)
	if err != nil {
		return loadgen.BenchConfig{}, err
	}
	kind, err := loadgen.ParseKind(f.kind)
	if err != nil {
		return loadgen.BenchConfig{}, err
	}
	if f.messages <= 0 || f.sessions <= 0 || f.perConn <= 0 {
		return loadgen.BenchConfig{}, errors.New("--messages, --sessions and --per-conn must be positive")
	}
	if f.seqBase < 0 || f.sinkMessages < 0 || (f.seqBase > 0 && f.sinkListen != "") {
		return loadgen.BenchConfig{}, errors.New("--seq-base and --sink-messages must not be negative, and the client with --sink-listen numbers from 0")
	}
	if f.target == "" && f.sinkListen == "" {
		return loadgen.BenchConfig{}, errors.New("give --target, --sink-listen or both")
	}
	bc := loadgen.BenchConfig{
		Load: loadgen.Config{
			Target: f.target, Sessions: f.sessions, Messages: f.messages, PerConn: f.perConn,
			Size: size, Kind: kind, Pipelining: f.pipelining, RunID: f.runID, SeqBase: f.seqBase,
			Deadline: time.Now().Add(f.deadline), IOTimeout: f.ioTimeout,
		},
		SinkListen: f.sinkListen, SinkMessages: f.sinkMessages, Expect: f.expect, SinkTimeout: f.sinkTimeout, CPUPID: f.cpuPID,
	}
	if f.sinkKeywords != "" {
		for _, k := range strings.Split(f.sinkKeywords, ",") {
			if k = strings.TrimSpace(k); k != "" {
				bc.SinkKeywords = append(bc.SinkKeywords, k)
			}
		}
	}
	return bc, nil
}

// idleReport is the outcome of --idle.
type idleReport struct {
	Target        string  `json:"target"`
	Requested     int     `json:"requested"`
	Held          int     `json:"held"`
	Failed        int     `json:"failed"`
	FirstError    string  `json:"first_error,omitempty"`
	ServerPID     int     `json:"server_pid,omitempty"`
	RSSBeforeKiB  int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB   int64   `json:"rss_after_kib,omitempty"`
	PerSessionKiB float64 `json:"per_session_kib,omitempty"`
}

// benchIdle holds --idle sessions and reports the server's resident memory
// per session.
func benchIdle(ctx context.Context, f benchFlags, stdout, stderr io.Writer) int {
	if f.target == "" {
		fmt.Fprintln(stderr, "ferry bench: --idle needs --target")
		return 2
	}
	rep := idleReport{Target: f.target, Requested: f.idle, ServerPID: f.serverPID}
	if f.serverPID > 0 {
		kib, err := loadgen.ResidentKiB(f.serverPID)
		if err != nil {
			printError(stderr, "bench", err)
			return 1
		}
		rep.RSSBeforeKiB = kib
	}
	s := loadgen.OpenIdle(ctx, f.target, f.idle, f.idleParallel, f.ioTimeout)
	defer s.Close()
	rep.Held, rep.Failed = s.Held(), s.Failed
	if s.FirstError != nil {
		rep.FirstError = s.FirstError.Error()
	}
	select {
	case <-time.After(f.idleSettle):
	case <-ctx.Done():
	}
	if f.serverPID > 0 {
		kib, err := loadgen.ResidentKiB(f.serverPID)
		if err != nil {
			printError(stderr, "bench", err)
			return 1
		}
		rep.RSSAfterKiB = kib
		if rep.Held > 0 {
			rep.PerSessionKiB = float64(rep.RSSAfterKiB-rep.RSSBeforeKiB) / float64(rep.Held)
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprintf(stdout, "idle sessions to %s: %d held of %d (%d failed)\n", rep.Target, rep.Held, rep.Requested, rep.Failed)
		if rep.FirstError != "" {
			fmt.Fprintf(stdout, "first error: %s\n", rep.FirstError)
		}
		if f.serverPID > 0 {
			fmt.Fprintf(stdout, "server pid %d resident: %d KiB before, %d KiB after: %.1f KiB per session\n",
				f.serverPID, rep.RSSBeforeKiB, rep.RSSAfterKiB, rep.PerSessionKiB)
		}
	}
	if rep.Held < rep.Requested {
		return 1
	}
	return 0
}
