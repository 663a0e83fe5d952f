package admin

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// gather returns the registry's families by name.
func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// TestMetricFamiliesFromStart: every metric docs/admin-api.md lists is
// exported before any event (counters at zero), ferry_build_info among
// them, and every label value is ASCII.
func TestMetricFamiliesFromStart(t *testing.T) {
	doc, err := os.ReadFile("../../docs/admin-api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := regexp.MustCompile("(?m)^\\| `(ferry_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(documented) < 30 {
		t.Fatalf("found only %d metrics in docs/admin-api.md", len(documented))
	}
	m := NewMetrics()
	m.SetBuildInfo("1.2.3")
	q, _ := openQueue(t, discardLogger(), nil)
	m.WatchQueue(q)
	fams := gather(t, m)
	for _, d := range documented {
		name := d[1]
		f := fams[name]
		if strings.HasPrefix(name, "ferry_cluster_") {
			// The shared queue's totals (TestMetricsSharedQueue); the
			// segment log has none.
			if f != nil {
				t.Errorf("%s exported with the segment log", name)
			}
			continue
		}
		if f == nil {
			t.Errorf("%s is documented but not exported at start", name)
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if !isASCII(l.GetValue()) {
					t.Errorf("%s{%s=%q}: not ASCII", name, l.GetName(), l.GetValue())
				}
			}
			if f.GetType() == dto.MetricType_COUNTER && s.GetCounter().GetValue() != 0 {
				t.Errorf("%s starts at %v", name, s.GetCounter().GetValue())
			}
		}
	}
	bi := fams["ferry_build_info"]
	if bi == nil || len(bi.GetMetric()) != 1 || bi.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("ferry_build_info = %v", bi)
	}
	labels := map[string]string{}
	for _, l := range bi.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "1.2.3" || !strings.HasPrefix(labels["goversion"], "go") || labels["revision"] == "" {
		t.Errorf("ferry_build_info labels %v", labels)
	}
}

// TestHopLabelCap: the hop label takes at most MaxHopLabels values; later
// next hops count as "other". An internationalised domain is labelled in
// A-labels.
func TestHopLabelCap(t *testing.T) {
	m := NewMetrics()
	logger := slog.New(m.Handler(discardLogger().Handler()))
	const extra = 50
	for i := 0; i < MaxHopLabels+extra; i++ {
		logger.Info("deferred", "event", "deferred", "to", fmt.Sprintf("u@d%03d.example", i), "reply", "451 4.3.0 later")
	}
	logger.Info("deferred", "event", "deferred", "to", "u@d000.example", "reply", "451 4.3.0 later")
	f := gather(t, m)["ferry_delivery_failures_total"]
	values := map[string]float64{}
	for _, s := range f.GetMetric() {
		var hop, status string
		for _, l := range s.GetLabel() {
			switch l.GetName() {
			case "hop":
				hop = l.GetValue()
			case "status":
				status = l.GetValue()
			}
		}
		if status == "deferred" {
			values[hop] = s.GetCounter().GetValue()
		}
	}
	if len(values) > MaxHopLabels+1 {
		t.Errorf("%d hop label values, want at most %d", len(values), MaxHopLabels+1)
	}
	if values["other"] != extra {
		t.Errorf(`hop="other" = %v, want %d`, values["other"], extra)
	}
	if values["d000.example"] != 2 {
		t.Errorf(`hop="d000.example" = %v, want 2 (a known hop keeps its label)`, values["d000.example"])
	}

	m = NewMetrics()
	logger = slog.New(m.Handler(discardLogger().Handler()))
	logger.Info("bounced", "event", "bounced", "to", "u@bücher.example", "reply", "550 5.1.1 no")
	for _, s := range gather(t, m)["ferry_delivery_failures_total"].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == "hop" && l.GetValue() != "other" && l.GetValue() != "xn--bcher-kva.example" {
				t.Errorf("hop label %q, want the A-label form xn--bcher-kva.example", l.GetValue())
			}
		}
	}
}

// TestAdminBounceCounted: "queue bounce" through the admin API is logged
// and counted as a bounce of each pending recipient, like one at delivery.
func TestAdminBounceCounted(t *testing.T) {
	m := NewMetrics()
	var logs logBuffer
	logger := slog.New(m.Handler(slog.NewTextHandler(&logs, nil)))
	q, _ := openQueue(t, logger, nil)
	cl, addr := startAdmin(t, Options{Queue: q, Metrics: m, Logger: logger})
	id := put(t, q, plainBody, "a@x.test", "b@y.test", "c@z.test")
	if _, err := cl.Act(testCtx(t), id, "bounce"); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, addr)
	if v := got[series("ferry_deliveries_total", "status=bounced")]; v != 2 {
		t.Errorf("ferry_deliveries_total{status=bounced} = %v, want 2", v)
	}
	if v := got[series("ferry_delivery_failures_total", "hop=y.test", "status=bounced")]; v != 1 {
		t.Errorf("ferry_delivery_failures_total{hop=y.test,status=bounced} = %v, want 1", v)
	}
	for _, rcpt := range []string{"b@y.test", "c@z.test"} {
		if !strings.Contains(logs.String(), id+": to=<"+rcpt+">, relay=none") || !strings.Contains(logs.String(), "status=bounced") {
			t.Errorf("no bounce line for %s:\n%s", rcpt, logs.String())
		}
	}
}
