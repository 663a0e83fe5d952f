package loadgen

import (
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name          string
		in            []time.Duration
		p50, p90, p99 time.Duration
		mean          time.Duration
	}{
		{"empty", nil, 0, 0, 0, 0},
		{"one", []time.Duration{5 * ms}, 5 * ms, 5 * ms, 5 * ms, 5 * ms},
		{"two", []time.Duration{9 * ms, 1 * ms}, 1 * ms, 9 * ms, 9 * ms, 5 * ms},
		{"ten reversed", []time.Duration{10 * ms, 9 * ms, 8 * ms, 7 * ms, 6 * ms, 5 * ms, 4 * ms, 3 * ms, 2 * ms, 1 * ms}, 5 * ms, 9 * ms, 10 * ms, 5500 * time.Microsecond},
	} {
		got := percentiles(append([]time.Duration(nil), tc.in...))
		if got.P50 != tc.p50 || got.P90 != tc.p90 || got.P99 != tc.p99 || got.Mean != tc.mean || got.Count != len(tc.in) {
			t.Errorf("%s: got %+v; want p50 %v p90 %v p99 %v mean %v", tc.name, got, tc.p50, tc.p90, tc.p99, tc.mean)
		}
	}
}

func TestSummariseMergesSessions(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	for i := 1; i <= 100; i++ {
		r := a
		if i%2 == 0 {
			r = b
		}
		r.add(time.Duration(i) * time.Microsecond)
	}
	got := summarise([]*recorder{a, b})
	if got.Count != 100 || got.P50 != 50*time.Microsecond || got.P99 != 99*time.Microsecond || got.Max != 100*time.Microsecond || got.Min != time.Microsecond {
		t.Errorf("summarise = %+v", got)
	}
}
