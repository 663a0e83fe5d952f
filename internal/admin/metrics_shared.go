package admin

import (
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/prometheus/client_golang/prometheus"
)

// sharedDescs are the ferry_cluster_* families: the totals of a queue
// shared by several relays, read from the shared store. Every relay of the
// cluster exports the same values, so they are named apart from a relay's
// own figures; aggregate them across relays with max, never sum.
type sharedDescs struct {
	size, messages, rcpts, oldest, bytes, leases, up, age *prometheus.Desc
}

func newSharedDescs() sharedDescs {
	const same = " The same on every relay of the cluster: aggregate with max, not sum."
	return sharedDescs{
		size:     prometheus.NewDesc("ferry_cluster_queue_size", "Messages in the shared queue."+same, nil, nil),
		messages: prometheus.NewDesc("ferry_cluster_queue_messages", "Messages in the shared queue, by state: active, deferred (a recipient waits for a retry), held."+same, []string{"state"}, nil),
		rcpts:    prometheus.NewDesc("ferry_cluster_queue_recipients", "Recipients of the shared queue still to deliver, by state: pending or deferred."+same, []string{"state"}, nil),
		oldest:   prometheus.NewDesc("ferry_cluster_queue_oldest_age_seconds", "Age of the oldest message in the shared queue (0 when empty)."+same, nil, nil),
		bytes:    prometheus.NewDesc("ferry_cluster_queue_bytes", "Octets the shared queue's tables take in the database, indexes and rows awaiting vacuum included."+same, nil, nil),
		leases:   prometheus.NewDesc("ferry_cluster_leases", "Leases recorded in the shared queue per relay (node): live, or expired (a relay that stopped or paused; the row stays until its hop is leased again)."+same, []string{"node", "state"}, nil),
		up:       prometheus.NewDesc("ferry_cluster_stats_up", "1 when this relay's last read of the shared queue's totals succeeded, 0 when it failed (the ferry_cluster_* values are then the last ones read)."+same, nil, nil),
		age:      prometheus.NewDesc("ferry_cluster_stats_age_seconds", "How old the ferry_cluster_* values are: they are read at most every few seconds and cached.", nil, nil),
	}
}

func (d sharedDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.size, d.messages, d.rcpts, d.oldest, d.bytes, d.leases, d.up, d.age} {
		ch <- x
	}
}

// collect sends the shared queue's totals; none before a first read
// succeeded, except ferry_cluster_stats_up.
func (d sharedDescs) collect(sh queue.Shared, send func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
	st, err := sh.SharedStats()
	up := 1.0
	if err != nil {
		up = 0
	}
	send(d.up, prometheus.GaugeValue, up)
	if st.Read.IsZero() {
		return
	}
	send(d.age, prometheus.GaugeValue, max(0, time.Since(st.Read).Seconds()))
	send(d.size, prometheus.GaugeValue, float64(st.Messages))
	send(d.messages, prometheus.GaugeValue, float64(st.Active), "active")
	send(d.messages, prometheus.GaugeValue, float64(st.Deferred), "deferred")
	send(d.messages, prometheus.GaugeValue, float64(st.Held), "held")
	send(d.rcpts, prometheus.GaugeValue, float64(st.PendingRcpts), "pending")
	send(d.rcpts, prometheus.GaugeValue, float64(st.DeferredRcpts), "deferred")
	oldest := 0.0
	if !st.Oldest.IsZero() {
		oldest = max(0, time.Since(st.Oldest).Seconds())
	}
	send(d.oldest, prometheus.GaugeValue, oldest)
	send(d.bytes, prometheus.GaugeValue, float64(st.Bytes))
	for _, nl := range st.Leases {
		node := asciiLabel(nl.Node)
		send(d.leases, prometheus.GaugeValue, float64(nl.Live), node, "live")
		send(d.leases, prometheus.GaugeValue, float64(nl.Expired), node, "expired")
	}
}
