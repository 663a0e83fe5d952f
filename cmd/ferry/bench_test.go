package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/loadgen"
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
		{"--no-such-flag"},
	} {
		var out, errb bytes.Buffer
		if code := runBench(args, &out, &errb); code != 2 {
			t.Errorf("runBench(%q) = %d; want 2", args, code)
		}
	}
}
