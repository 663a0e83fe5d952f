// Package bench holds the Ferry-against-Postfix comparison (compare.sh) and
// its helpers; this test runs the comparison's quick mode on demand.
package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestCompareQuick runs "compare.sh --quick" and checks its JSON: every
// scenario measured for the baseline, Postfix and Ferry, every accepted
// message received exactly once. It needs root and Debian's postfix, takes
// a minute, and loads the machine, so it runs only with FERRY_COMPARE=1.
func TestCompareQuick(t *testing.T) {
	if os.Getenv("FERRY_COMPARE") != "1" {
		t.Skip("comparison against Postfix skipped: set FERRY_COMPARE=1 to run bench/compare.sh --quick (root, postfix installed)")
	}
	out := filepath.Join(t.TempDir(), "quick.json")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "compare.sh", "--quick", "--out", out, "--budget", "300")
	b, err := cmd.CombinedOutput()
	t.Logf("compare.sh --quick:\n%s", b)
	if err != nil {
		t.Fatalf("compare.sh: %v", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Scenarios []struct {
			Name    string `json:"name"`
			Servers map[string]struct {
				Runs         int     `json:"runs"`
				AcceptRate   float64 `json:"accept_rate_median"`
				EndToEndRate float64 `json:"end_to_end_rate_median"`
				Accepted     int     `json:"accepted_total"`
				Duplicates   int64   `json:"duplicates_total"`
				Missing      int     `json:"missing_total"`
				EightBit     int64   `json:"eightbit_without_8bitmime_total"`
			} `json:"servers"`
			Ratio *struct {
				Accept float64 `json:"accept"`
			} `json:"ratio_ferry_over_postfix"`
		} `json:"scenarios"`
		Idle *struct {
			Held int `json:"held"`
		} `json:"idle_sessions"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if len(res.Scenarios) != 4 {
		t.Fatalf("%d scenarios in the table; want 4", len(res.Scenarios))
	}
	for _, s := range res.Scenarios {
		for _, name := range []string{"baseline", "postfix", "maddy", "ferry"} {
			v, ok := s.Servers[name]
			if !ok || v.Runs == 0 || v.Accepted == 0 || v.AcceptRate <= 0 || v.EndToEndRate <= 0 {
				t.Errorf("%s/%s: %+v; want runs with accepted messages and positive rates", s.Name, name, v)
				continue
			}
			if v.Duplicates != 0 || v.Missing != 0 || v.EightBit != 0 {
				t.Errorf("%s/%s: %d duplicates, %d missing, %d 8-bit without 8BITMIME", s.Name, name, v.Duplicates, v.Missing, v.EightBit)
			}
		}
		if s.Ratio == nil || s.Ratio.Accept <= 0 {
			t.Errorf("%s: no Ferry/Postfix ratio", s.Name)
		}
	}
	if res.Idle == nil || res.Idle.Held == 0 {
		t.Error("no idle-session measurement")
	}
}
