// Command report turns the per-run JSON reports that bench/compare.sh
// collects ("ferry bench --json" output, one file per scenario, server and
// run, named SCENARIO__SERVER__RUN.json) into one table of medians and
// Ferry/Postfix and Ferry/maddy ratios, printed and written as JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/loadgen"
)

// Servers in the order the table lists them.
var servers = []string{"baseline", "postfix", "maddy", "ferry"}

// Scenario is one line of the comparison.
type Scenario struct {
	Name    string             `json:"name"`
	Servers map[string]*Server `json:"servers"`
	// Ratio is Ferry's median over Postfix's: accept and end-to-end rates
	// (higher is better) and CPU per message (lower is better).
	Ratio *Ratio `json:"ratio_ferry_over_postfix,omitempty"`
	// RatioMaddy is Ferry's median over maddy's, alike.
	RatioMaddy *Ratio `json:"ratio_ferry_over_maddy,omitempty"`
	// FerryOverBaseline is Ferry's end-to-end median over the baseline's
	// accept median: the share of the set-up's ceiling Ferry reaches.
	FerryOverBaseline float64 `json:"ferry_e2e_over_baseline,omitempty"`
	// Ceiling is the most messages per second a relay can carry on this
	// machine's cores if it spends, per message, as much CPU as the load
	// generator and sink together (the baseline's median, measured):
	// cores / (2 × that CPU). FerryOfCeiling is Ferry's end-to-end median
	// over it.
	Ceiling        float64 `json:"ceiling_msgs_per_s,omitempty"`
	FerryOfCeiling float64 `json:"ferry_e2e_over_ceiling,omitempty"`
}

// Server is one server's runs of a scenario and their medians.
type Server struct {
	Runs           int     `json:"runs"`
	Sessions       int     `json:"sessions"`
	Messages       int     `json:"messages"`
	Size           int     `json:"size"`
	Kind           string  `json:"kind"`
	AcceptRate     float64 `json:"accept_rate_median"`
	EndToEndRate   float64 `json:"end_to_end_rate_median"`
	CPUPerThousand float64 `json:"cpu_seconds_per_1000_msgs_median"`
	P99Millis      float64 `json:"p99_ms_median"`
	// BenchCPUPerThousand is the CPU seconds the load generator and the
	// sink ("ferry bench") spent per 1,000 accepted messages.
	BenchCPUPerThousand  float64        `json:"bench_cpu_seconds_per_1000_msgs_median,omitempty"`
	BenchCPUPerThousands []float64      `json:"bench_cpu_seconds_per_1000_msgs,omitempty"`
	AcceptRates          []float64      `json:"accept_rates"`
	EndToEndRates        []float64      `json:"end_to_end_rates"`
	CPUPerThousands      []float64      `json:"cpu_seconds_per_1000_msgs"`
	P99s                 []float64      `json:"p99_ms"`
	Accepted             int            `json:"accepted_total"`
	Duplicates           int64          `json:"duplicates_total"`
	Missing              int            `json:"missing_total"`
	EightBitViolated     int64          `json:"eightbit_without_8bitmime_total"`
	Errors               map[string]int `json:"errors"`
}

// Ratio is Ferry over another relay (Postfix or maddy).
type Ratio struct {
	Accept   float64 `json:"accept"`
	EndToEnd float64 `json:"end_to_end"`
	CPU      float64 `json:"cpu_per_msg"`
}

// Output is the whole JSON document.
type Output struct {
	Generated time.Time       `json:"generated"`
	Command   string          `json:"command"`
	Machine   json.RawMessage `json:"machine,omitempty"`
	Scenarios []*Scenario     `json:"scenarios"`
	Idle      json.RawMessage `json:"idle_sessions,omitempty"`
	Notes     []string        `json:"notes,omitempty"`
}

func main() {
	dir := flag.String("dir", "", "directory of SCENARIO__SERVER__RUN.json files (and optional machine.json, idle.json)")
	out := flag.String("out", "", "write the JSON table here")
	command := flag.String("command", "", "the command line that produced the runs, recorded in the JSON")
	order := flag.String("scenarios", "", "scenario names in table order, comma-separated")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "report: -dir is required")
		os.Exit(2)
	}
	o, err := build(*dir, strings.Split(*order, ","))
	if err != nil {
		fmt.Fprintf(os.Stderr, "report: %v\n", err)
		os.Exit(1)
	}
	o.Command = *command
	printTable(os.Stdout, o)
	if *out != "" {
		b, err := json.MarshalIndent(o, "", "  ")
		if err != nil {
			fmt.Fprintf(os.Stderr, "report: %v\n", err)
			os.Exit(1)
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "report: %v\n", err)
			os.Exit(1)
		}
	}
}

// build reads the run files and computes the medians.
func build(dir string, order []string) (*Output, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*__*__*.json"))
	if err != nil {
		return nil, err
	}
	o := &Output{Generated: time.Now().UTC()}
	byName := map[string]*Scenario{}
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".json"), "__")
		if len(parts) != 3 {
			continue
		}
		scn, srv := parts[0], parts[1]
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rep loadgen.Report
		var self struct {
			BenchCPU *float64 `json:"bench_cpu_seconds"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			o.Notes = append(o.Notes, fmt.Sprintf("%s: unreadable report (%v)", filepath.Base(f), err))
			continue
		}
		_ = json.Unmarshal(b, &self)
		s := byName[scn]
		if s == nil {
			s = &Scenario{Name: scn, Servers: map[string]*Server{}}
			byName[scn] = s
		}
		v := s.Servers[srv]
		if v == nil {
			v = &Server{Sessions: rep.Sessions, Messages: rep.Messages, Size: rep.Size, Kind: string(rep.Kind), Errors: map[string]int{}}
			s.Servers[srv] = v
		}
		v.Runs++
		v.Accepted += rep.Client.Accepted
		v.AcceptRates = append(v.AcceptRates, rep.AcceptRate)
		for k, n := range rep.Client.Errors {
			v.Errors[k] += n
		}
		if rep.Sink != nil {
			v.EndToEndRates = append(v.EndToEndRates, rep.Sink.EndToEndRate)
			v.Duplicates += rep.Sink.Duplicates
			v.Missing += rep.Sink.Missing
			v.EightBitViolated += rep.Sink.EightBitWithout8BITMIME
		}
		if rep.CPU != nil {
			v.CPUPerThousands = append(v.CPUPerThousands, rep.CPU.PerThousand)
		}
		if self.BenchCPU != nil && rep.Client.Accepted > 0 {
			v.BenchCPUPerThousands = append(v.BenchCPUPerThousands, *self.BenchCPU*1000/float64(rep.Client.Accepted))
		}
		v.P99s = append(v.P99s, float64(rep.Client.Latency.P99)/float64(time.Millisecond))
	}
	for _, s := range byName {
		for _, v := range s.Servers {
			v.AcceptRate = median(v.AcceptRates)
			v.EndToEndRate = median(v.EndToEndRates)
			v.CPUPerThousand = median(v.CPUPerThousands)
			v.P99Millis = median(v.P99s)
			v.BenchCPUPerThousand = median(v.BenchCPUPerThousands)
		}
		f, p, m, b := s.Servers["ferry"], s.Servers["postfix"], s.Servers["maddy"], s.Servers["baseline"]
		s.Ratio, s.RatioMaddy = ratio(f, p), ratio(f, m)
		if f != nil && b != nil {
			s.FerryOverBaseline = div(f.EndToEndRate, b.AcceptRate)
		}
		if b != nil && b.BenchCPUPerThousand > 0 {
			s.Ceiling = float64(runtime.NumCPU()) * 1000 / (2 * b.BenchCPUPerThousand)
			if f != nil {
				s.FerryOfCeiling = div(f.EndToEndRate, s.Ceiling)
			}
		}
	}
	seen := map[string]bool{}
	for _, n := range order {
		if s := byName[n]; s != nil && !seen[n] {
			o.Scenarios = append(o.Scenarios, s)
			seen[n] = true
		}
	}
	var rest []string
	for n := range byName {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	for _, n := range rest {
		o.Scenarios = append(o.Scenarios, byName[n])
	}
	if b, err := os.ReadFile(filepath.Join(dir, "machine.json")); err == nil && json.Valid(b) {
		o.Machine = b
	}
	if b, err := os.ReadFile(filepath.Join(dir, "idle.json")); err == nil && json.Valid(b) {
		o.Idle = b
	}
	return o, nil
}

// ratio is f's medians over o's, nil when either is missing.
func ratio(f, o *Server) *Ratio {
	if f == nil || o == nil {
		return nil
	}
	return &Ratio{Accept: div(f.AcceptRate, o.AcceptRate), EndToEnd: div(f.EndToEndRate, o.EndToEndRate), CPU: div(f.CPUPerThousand, o.CPUPerThousand)}
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// printTable prints one table of medians with the ratios.
func printTable(w io.Writer, o *Output) {
	fmt.Fprintf(w, "%-16s %-9s %5s %10s %10s %12s %9s %5s %5s %s\n", "scenario", "server", "runs", "accept/s", "e2e/s", "cpu s/1k msg", "p99 ms", "dup", "miss", "errors")
	for _, s := range o.Scenarios {
		for _, name := range servers {
			v := s.Servers[name]
			if v == nil {
				continue
			}
			cpu, e2e := "-", "-"
			if len(v.CPUPerThousands) > 0 {
				cpu = strconv.FormatFloat(v.CPUPerThousand, 'f', 3, 64)
			}
			if len(v.EndToEndRates) > 0 {
				e2e = strconv.FormatFloat(v.EndToEndRate, 'f', 0, 64)
			}
			fmt.Fprintf(w, "%-16s %-9s %5d %10.0f %10s %12s %9.1f %5d %5d %s\n", s.Name, name, v.Runs, v.AcceptRate, e2e, cpu, v.P99Millis, v.Duplicates, v.Missing, errorsText(v.Errors))
		}
		for _, x := range []struct {
			label string
			r     *Ratio
		}{{"ferry/pf", s.Ratio}, {"ferry/md", s.RatioMaddy}} {
			if x.r != nil {
				fmt.Fprintf(w, "%-16s %-9s %5s %9.2fx %9.2fx %11.3fx\n", s.Name, x.label, "", x.r.Accept, x.r.EndToEnd, x.r.CPU)
			}
		}
		if s.Ceiling > 0 {
			fmt.Fprintf(w, "%-16s %-9s %5s %10s %10.0f   (ceiling: %d cores / 2 × load generator + sink CPU per message, %.3f s/1k; Ferry reaches %.2fx of it)\n",
				s.Name, "ceiling", "", "", s.Ceiling, runtime.NumCPU(), s.Servers["baseline"].BenchCPUPerThousand, s.FerryOfCeiling)
		}
		if s.FerryOverBaseline > 0 {
			fmt.Fprintf(w, "%-16s %-9s %5s %10s %9.2fx   (Ferry end to end / baseline accept: share of the set-up's ceiling)\n", s.Name, "ferry/bl", "", "", s.FerryOverBaseline)
		}
	}
	if len(o.Idle) > 0 {
		var idle map[string]any
		if json.Unmarshal(o.Idle, &idle) == nil {
			fmt.Fprintf(w, "idle sessions: %v held of %v, %v KiB resident per session (RSS %v → %v KiB)\n",
				idle["held"], idle["requested"], idle["per_session_kib"], idle["rss_before_kib"], idle["rss_after_kib"])
		}
	}
	for _, n := range o.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func errorsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s×%d", k, m[k])
	}
	return b.String()
}
