package loadgen

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// Report is the outcome of one "ferry bench" run, as printed and as JSON.
type Report struct {
	Target     string  `json:"target"`
	Sessions   int     `json:"sessions"`
	Messages   int     `json:"messages"`
	PerConn    int     `json:"per_conn"`
	Size       int     `json:"size"`
	Kind       Kind    `json:"kind"`
	Pipelining bool    `json:"pipelining"`
	Client     Result  `json:"client"`
	AcceptRate float64 `json:"accept_rate"`
	// Sink is set when the run had a counting sink at the far end.
	Sink *SinkReport `json:"sink,omitempty"`
	// CPU is set when a server process tree was measured.
	CPU *CPUReport `json:"cpu,omitempty"`
}

// SinkReport is the far end's view of a run.
type SinkReport struct {
	SinkStats
	// Expected is how many distinct messages the sink waited for.
	Expected int `json:"expected"`
	// Missing counts messages accepted by the target but never received;
	// Unexpected those received although the client saw them fail.
	Missing    int `json:"missing"`
	Unexpected int `json:"unexpected"`
	// EndToEndRate is distinct messages per second from the first final
	// 250 at the client to the last message received at the sink.
	EndToEndRate float64 `json:"end_to_end_rate"`
	// WaitError says why the sink stopped waiting early, or is empty.
	WaitError string `json:"wait_error,omitempty"`
}

// CPUReport is the CPU time a server's process tree used during the run
// (from before the first connection to the end of the sink's wait).
type CPUReport struct {
	PID     int     `json:"pid"`
	Seconds float64 `json:"seconds"`
	// PerThousand is CPU seconds per 1,000 accepted messages.
	PerThousand float64 `json:"seconds_per_1000_msgs"`
}

// EndToEndRate computes distinct messages per second from first (the first
// accept at the client) to last (the last arrival at the sink).
func EndToEndRate(distinct int64, first, last time.Time) float64 {
	if first.IsZero() || last.IsZero() {
		return 0
	}
	d := last.Sub(first).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(distinct) / d
}

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) {
	c := r.Client
	fmt.Fprintf(w, "target %s: %d sessions, %d messages of %d octets (%s), %d per connection, pipelining %v\n",
		r.Target, r.Sessions, r.Messages, r.Size, r.Kind, r.PerConn, r.Pipelining)
	fmt.Fprintf(w, "accepted   %d of %d attempted in %.3fs: %.1f msgs/s (%d connections)\n",
		c.Accepted, c.Attempted, c.End.Sub(c.Start).Seconds(), r.AcceptRate, c.Connections)
	l := c.Latency
	fmt.Fprintf(w, "latency    MAIL→250: p50 %s  p90 %s  p99 %s  max %s  mean %s\n",
		ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean))
	if len(c.Errors) == 0 {
		fmt.Fprintln(w, "errors     none")
	} else {
		keys := make([]string, 0, len(c.Errors))
		for k := range c.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprint(w, "errors    ")
		for _, k := range keys {
			fmt.Fprintf(w, " %q×%d", k, c.Errors[k])
		}
		fmt.Fprintln(w)
	}
	if s := r.Sink; s != nil {
		fmt.Fprintf(w, "sink       received %d (distinct %d of %d expected), duplicates %d, missing %d, unexpected %d, foreign %d\n",
			s.Received, s.Distinct, s.Expected, s.Duplicates, s.Missing, s.Unexpected, s.Foreign)
		fmt.Fprintf(w, "end to end %.1f msgs/s (first accept → last received)\n", s.EndToEndRate)
		if s.EightBitWithout8BITMIME > 0 {
			fmt.Fprintf(w, "sink       %d messages with 8-bit octets arrived without BODY=8BITMIME (RFC 6152 §3 violated)\n", s.EightBitWithout8BITMIME)
		}
		if s.WaitError != "" {
			fmt.Fprintf(w, "sink       stopped waiting: %s\n", s.WaitError)
		}
	}
	if p := r.CPU; p != nil {
		fmt.Fprintf(w, "server cpu pid %d tree: %.2fs, %.3f s per 1,000 messages\n", p.PID, p.Seconds, p.PerThousand)
	}
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
