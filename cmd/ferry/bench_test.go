package main

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/loadgen"
	"github.com/ferrymta/ferry/internal/testrelay"
)

func TestBenchAgainstOwnSink(t *testing.T) {
	var out, errb bytes.Buffer
	code := runBench([]string{"--sink-listen", "127.0.0.1:0", "--sessions", "3", "--messages", "12", "--per-conn", "2",
		"--size", "2KiB", "--kind", "8bit", "--pipelining", "--json", "--deadline", "30s"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Client.Accepted != 12 || rep.Sink == nil || rep.Sink.Distinct != 12 || rep.Sink.Missing != 0 || rep.Size != 2048 || rep.Kind != loadgen.Kind8Bit {
		t.Errorf("report %+v sink %+v", rep, rep.Sink)
	}
}

// TestBenchTwoClientsOneSink: two clients of one run (one --seq-base apart)
// send to one counting sink, which counts both as the run's (none foreign)
// and waits for all of them, as bench/shared-queue.sh drives two relays.
func TestBenchTwoClientsOneSink(t *testing.T) {
	addr := testrelay.FreePort(t)
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := runBench([]string{"--sink-listen", addr, "--run-id", "two", "--messages", "6", "--sink-messages", "12",
			"--expect", "12", "--json", "--deadline", "60s"}, &out, &errb)
		done <- result{code, out.String() + errb.String()}
	}()
	testrelay.WaitFor(t, "the sink listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	var out, errb bytes.Buffer
	if code := runBench([]string{"--target", addr, "--run-id", "two", "--seq-base", "6", "--messages", "6", "--deadline", "60s"}, &out, &errb); code != 0 {
		t.Fatalf("second client: exit %d, %s%s", code, out.String(), errb.String())
	}
	r := <-done
	if r.code != 0 {
		t.Fatalf("client with the sink: exit %d, %s", r.code, r.out)
	}
	var rep loadgen.Report
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	if s := rep.Sink; s == nil || s.Distinct != 12 || s.Foreign != 0 || s.Missing != 0 || s.Unexpected != 0 || s.Duplicates != 0 || s.WaitError != "" {
		t.Errorf("sink %+v, want 12 distinct of the run, none foreign", rep.Sink)
	}
}

func TestBenchTextAndIdle(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runBench([]string{"--sink-listen", "127.0.0.1:0", "--messages", "5", "--deadline", "30s"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	for _, want := range []string{"accepted   5 of 5", "p50", "end to end", "duplicates 0, missing 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Idle mode needs a target; nothing listens on port 1 of loopback here,
	// so the one session fails and the exit status says so.
	out.Reset()
	if code := runBench([]string{"--idle", "1", "--target", "127.0.0.1:1", "--io-timeout", "2s", "--deadline", "10s"}, &out, &errb); code != 1 {
		t.Errorf("idle against a closed port: exit %d; want 1\n%s", code, out.String())
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, // neither target nor sink
		{"--target", "x:1", "--size", "huge"},
		{"--target", "x:1", "--kind", "utf16"},
		{"--target", "x:1", "--messages", "0"},
		{"--target", "x:1", "extra"},
		{"--sink-listen", "127.0.0.1:0", "--seq-base", "5"},
		{"--target", "x:1", "--seq-base", "-1"},
		{"--no-such-flag"},
	} {
		var out, errb bytes.Buffer
		if code := runBench(args, &out, &errb); code != 2 {
			t.Errorf("runBench(%q) = %d; want 2", args, code)
		}
	}
}
