package loadgen

import (
	"math"
	"slices"
	"time"
)

// Latencies summarises transaction latencies: the time from sending MAIL to
// reading the final reply after the content.
type Latencies struct {
	Count int           `json:"count"`
	Min   time.Duration `json:"min_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
	Mean  time.Duration `json:"mean_ns"`
}

// recorder collects one session's latencies; a run merges its sessions'
// recorders once they have ended, so recording takes no lock.
type recorder struct {
	samples []time.Duration
}

// add records one latency.
func (r *recorder) add(d time.Duration) { r.samples = append(r.samples, d) }

// summarise merges the recorders and computes exact nearest-rank
// percentiles over every sample (a run is bounded, so keeping them all is
// cheap: 8 octets per message).
func summarise(recs []*recorder) Latencies {
	n := 0
	for _, r := range recs {
		n += len(r.samples)
	}
	all := make([]time.Duration, 0, n)
	for _, r := range recs {
		all = append(all, r.samples...)
	}
	return percentiles(all)
}

// percentiles sorts samples in place and summarises them.
func percentiles(samples []time.Duration) Latencies {
	if len(samples) == 0 {
		return Latencies{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return Latencies{
		Count: len(samples),
		Min:   samples[0],
		P50:   rank(samples, 50),
		P90:   rank(samples, 90),
		P99:   rank(samples, 99),
		Max:   samples[len(samples)-1],
		Mean:  sum / time.Duration(len(samples)),
	}
}

// rank returns the p-th percentile of sorted samples by the nearest-rank
// method: the smallest sample with at least p% of the samples at or below
// it.
func rank(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
