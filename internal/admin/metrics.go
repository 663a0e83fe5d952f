package admin

import (
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds Ferry's Prometheus metrics in its own registry (never the
// global default one). Counters move when mail-log events pass through
// Handler; queue gauges are read from the queue given to WatchQueue at
// each scrape. docs/admin-api.md lists every metric.
type Metrics struct {
	reg *prometheus.Registry

	connections     prometheus.Counter
	commands        *prometheus.CounterVec
	smtpdReplies    *prometheus.CounterVec
	accepted        prometheus.Counter
	acceptedBytes   prometheus.Counter
	deliveries      *prometheus.CounterVec
	deliveryReplies *prometheus.CounterVec
	delay           *prometheus.HistogramVec
	hopFailures     *prometheus.CounterVec
	hopErrors       *prometheus.CounterVec
	converted       prometheus.Counter
	conversions     *prometheus.CounterVec
	authVerified    *prometheus.CounterVec
	authSigned      *prometheus.CounterVec
	dkimBroken      prometheus.Counter
	expired         prometheus.Counter
	finished        prometheus.Counter
	deleted         prometheus.Counter
	tls             *prometheus.CounterVec
	auth            *prometheus.CounterVec
	hopChanges      *prometheus.CounterVec
	adminOps        *prometheus.CounterVec
	dsns            *prometheus.CounterVec
	dsnSuppressed   *prometheus.CounterVec
	events          *prometheus.CounterVec
	commitRequests  prometheus.Histogram
	commitBytes     prometheus.Counter
	fsyncSeconds    prometheus.Histogram
	buildInfo       *prometheus.GaugeVec
	hops            *hopLabels

	mu      sync.Mutex
	q       queue.Store
	node    string // this relay's node name (ferry_node_info)
	backend string // its queue backend
}

// delayBuckets returns the delivery-delay histogram's upper bounds in
// seconds: from a fast relay hand-off to a day in the queue.
func delayBuckets() []float64 {
	return []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400}
}

// NewMetrics returns the metrics, registered with a new registry together
// with the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), hops: newHopLabels(MaxHopLabels),
		node: asciiLabel(queue.DefaultNode()), backend: "segment"}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.connections = counter("ferry_smtpd_connections_total", "SMTP sessions opened by clients (connect events).")
	m.commands = counterVec("ferry_smtpd_commands_total", "SMTP commands received, by verb and whether the reply was positive (from disconnect events).", "command", "result")
	m.smtpdReplies = counterVec("ferry_smtpd_rejects_total", "Negative replies Ferry gave to clients, by stage, reply code and enhanced code (reject events).", "stage", "code", "enhanced")
	m.accepted = counter("ferry_messages_accepted_total", "Messages accepted into the queue (queued events).")
	m.acceptedBytes = counter("ferry_messages_accepted_bytes_total", "Octets of the messages accepted into the queue.")
	m.deliveries = counterVec("ferry_deliveries_total", "Delivery outcomes per recipient: sent, deferred or bounced.", "status")
	m.deliveryReplies = counterVec("ferry_delivery_replies_total", "Replies recorded for recipients at delivery (the next hop's, or Ferry's own when no hop answered), by status, code and enhanced code.", "status", "code", "enhanced")
	m.delay = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_delivery_delay_seconds",
		Help:    "Time from acceptance to each delivery outcome (the delay attribute), by status.",
		Buckets: delayBuckets(),
	}, []string{"status"})
	m.reg.MustRegister(m.delay)
	m.hopFailures = counterVec("ferry_delivery_failures_total", "Deferred and bounced recipients per next-hop key (recipient domain; past 100 hops \"other\").", "hop", "status")
	m.hopErrors = counterVec("ferry_hop_errors_total", "Session failures per next hop (host:port, or the domain for routing; past 100 hops \"other\"): connect, tls, routing.", "hop", "kind")
	m.converted = counter("ferry_conversions_total", "Messages whose content was converted for a next hop (converted events).")
	m.authVerified = counterVec("ferry_auth_verified_total", "DKIM signatures (method=dkim) and ARC chains (method=arc) checked at receipt, by RFC 8601 result.", "method", "result")
	m.authSigned = counterVec("ferry_auth_signed_total", "What delivery added to messages: what=dkim (a DKIM-Signature), arc (an ARC set), kept (a valid own signature, not signed again).", "what")
	m.conversions = counterVec("ferry_conversion_kinds_total", "Converted messages by kind of change, e.g. 8bit->quoted-printable, header->encoded-word.", "kind")
	m.dkimBroken = counter("ferry_conversions_dkim_broken_total", "Converted messages whose DKIM signature no longer verifies (RFC 6376 §5.3).")
	m.expired = counter("ferry_recipients_expired_total", "Recipients failed because their message outlived the queue lifetime.")
	m.finished = counter("ferry_messages_finished_total", "Messages removed from the queue after every recipient reached a final state.")
	m.deleted = counter("ferry_messages_deleted_total", "Messages deleted by the administrator.")
	m.tls = counterVec("ferry_tls_total", "TLS outcomes: inbound handshakes (ok with version, failed) and outbound handshakes that failed.", "direction", "outcome", "version")
	m.auth = counterVec("ferry_smtpd_auth_total", "SMTP AUTH outcomes of clients.", "outcome")
	m.hopChanges = counterVec("ferry_hop_changes_total", "Changes seen in a next hop's EHLO keywords or TLS between two sightings.", "hop")
	m.adminOps = counterVec("ferry_admin_operations_total", "Queue operations through the admin API, by action.", "action")
	m.dsns = counterVec("ferry_dsns_total", "Delivery status notifications queued to senders, by kind (failed, delayed, delivered, relayed).", "kind")
	m.dsnSuppressed = counterVec("ferry_dsns_suppressed_total", "DSNs not sent, by kind and reason.", "kind", "reason")
	m.events = counterVec("ferry_log_events_total", "Mail-log events by event name and level (named events only).", "event", "level")
	m.commitRequests = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ferry_queue_commit_batch_requests",
		Help:    "Queue operations (Puts, recipient updates, …) carried by one group commit: one write and one fdatasync.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024
	})
	m.fsyncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ferry_queue_fsync_seconds",
		Help:    "Time one fdatasync of the queue's segment log took.",
		Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
	})
	m.reg.MustRegister(m.commitRequests, m.fsyncSeconds)
	m.commitBytes = counter("ferry_queue_commit_bytes_total", "Octets written to the queue's segment log by group commits.")
	m.buildInfo = newBuildInfo()
	m.reg.MustRegister(m.buildInfo)
	m.SetBuildInfo("unknown")
	m.seed()
	m.reg.MustRegister(newQueueCollector(m))
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCommit records one group commit of the queue; it is meant for
// queue.Config.OnCommit and only updates a counter and two histograms.
func (m *Metrics) ObserveCommit(st queue.CommitStats) {
	m.commitRequests.Observe(float64(st.Requests))
	m.fsyncSeconds.Observe(st.Sync.Seconds())
	m.commitBytes.Add(float64(st.Bytes))
}

// Registry returns the metrics' registry, to serve or to add collectors to.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// WatchQueue makes the queue gauges report q; New calls it with
// Options.Queue.
func (m *Metrics) WatchQueue(q queue.Store) {
	m.mu.Lock()
	m.q = q
	m.mu.Unlock()
}

// SetNode names this relay in ferry_node_info and in the node label of its
// own queue figures: its node name (queue.node) and queue backend
// ("segment" or "postgres"). NewMetrics starts with the host name and
// "segment".
func (m *Metrics) SetNode(node, backend string) {
	m.mu.Lock()
	m.node, m.backend = asciiLabel(node), asciiLabel(backend)
	m.mu.Unlock()
}

func (m *Metrics) watched() (q queue.Store, node, backend string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.q, m.node, m.backend
}

// queueCollector reads the queue at scrape time.
type queueCollector struct {
	m                                                *Metrics
	messages, total, rcpts, oldest, bytes            *prometheus.Desc
	segments, leases, segmentsRemoved, copiedForward *prometheus.Desc
	writeErrors, refused, writable                   *prometheus.Desc
	nodeInfo                                         *prometheus.Desc
	shared                                           sharedDescs
}

func newQueueCollector(m *Metrics) queueCollector {
	return queueCollector{
		m:               m,
		messages:        prometheus.NewDesc("ferry_queue_messages", "Messages in the queue, by state: active (due or in delivery, not held), deferred (a recipient waits for a retry), held.", []string{"state"}, nil),
		total:           prometheus.NewDesc("ferry_queue_size", "Messages in the queue.", nil, nil),
		rcpts:           prometheus.NewDesc("ferry_queue_recipients", "Recipients still to deliver, by state: pending or deferred.", []string{"state"}, nil),
		oldest:          prometheus.NewDesc("ferry_queue_oldest_age_seconds", "Age of the oldest queued message (0 when the queue is empty).", nil, nil),
		bytes:           prometheus.NewDesc("ferry_queue_bytes", "Stored octets of the queued messages.", nil, nil),
		segments:        prometheus.NewDesc("ferry_queue_segments", "Segment files of the queue's log.", nil, nil),
		leases:          prometheus.NewDesc("ferry_queue_leases", "Leases of due work held by this relay's delivery workers, labelled with its node name.", []string{"node"}, nil),
		segmentsRemoved: prometheus.NewDesc("ferry_queue_segments_removed_total", "Segment files removed since start.", nil, nil),
		copiedForward:   prometheus.NewDesc("ferry_queue_copied_forward_total", "Messages copied forward out of old segments since start.", nil, nil),
		writeErrors:     prometheus.NewDesc("ferry_queue_write_errors_total", "Failed writes, fdatasyncs and segment creations of the queue's log since start (a full or read-only spool).", nil, nil),
		refused:         prometheus.NewDesc("ferry_queue_refused_total", "Messages refused with 452 4.3.1 since start because the spool's free segment space reached the reserve kept for delivery records.", nil, nil),
		writable:        prometheus.NewDesc("ferry_queue_writable", "1 while the queue stores records and takes new mail, 0 while it cannot (see /readyz).", nil, nil),
		nodeInfo:        prometheus.NewDesc("ferry_node_info", "Always 1; the labels name this relay (queue.node) and its queue backend.", []string{"node", "backend"}, nil),
		shared:          newSharedDescs(),
	}
}

// Describe sends every queue metric's description.
func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.messages, c.total, c.rcpts, c.oldest, c.bytes,
		c.segments, c.leases, c.segmentsRemoved, c.copiedForward, c.writeErrors, c.refused, c.writable, c.nodeInfo} {
		ch <- d
	}
	c.shared.describe(ch)
}

// Collect reads Stats and, for the segment log, walks the queue once
// (envelopes are decoded, so a scrape costs time proportional to the
// queue's size). A shared queue is not walked: its cluster-wide totals come
// from queue.Shared (cached, bounded queries) as the ferry_cluster_*
// families.
func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	q, node, backend := c.m.watched()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(d, t, v, labels...); err == nil {
			ch <- m
		}
	}
	sh, isShared := q.(queue.Shared)
	if isShared {
		node = asciiLabel(sh.Node())
	}
	send(c.nodeInfo, prometheus.GaugeValue, 1, node, backend)
	if q == nil {
		return
	}
	st := q.Stats()
	send(c.segments, prometheus.GaugeValue, float64(st.Segments))
	send(c.leases, prometheus.GaugeValue, float64(st.Leases), node)
	send(c.segmentsRemoved, prometheus.CounterValue, float64(st.SegmentsRemoved))
	send(c.copiedForward, prometheus.CounterValue, float64(st.CopiedForward))
	send(c.writeErrors, prometheus.CounterValue, float64(st.WriteErrors))
	send(c.refused, prometheus.CounterValue, float64(st.Refused))
	writable := 1.0
	if q.Writable() != nil {
		writable = 0
	}
	send(c.writable, prometheus.GaugeValue, writable)
	if isShared {
		c.shared.collect(sh, send)
		return
	}
	send(c.total, prometheus.GaugeValue, float64(st.Messages))

	var active, deferred, held, pending, deferredRcpts, bytes float64
	var oldest float64
	first := true
	_ = q.Walk(queue.Filter{}, func(mi *queue.MessageInfo) bool {
		if first && mi.Env != nil && !mi.Env.Arrival.IsZero() {
			// Walk goes in ID order, and IDs sort by creation time.
			oldest = max(0, time.Since(mi.Env.Arrival).Seconds())
		}
		first = false
		bytes += float64(mi.Size)
		isDeferred := false
		for _, r := range mi.Rcpts {
			switch r.State {
			case queue.Pending:
				pending++
			case queue.Deferred:
				deferredRcpts++
				isDeferred = true
			}
		}
		switch {
		case mi.Held:
			held++
		case isDeferred:
			deferred++
		default:
			active++
		}
		return true
	})
	send(c.messages, prometheus.GaugeValue, active, "active")
	send(c.messages, prometheus.GaugeValue, deferred, "deferred")
	send(c.messages, prometheus.GaugeValue, held, "held")
	send(c.rcpts, prometheus.GaugeValue, pending, "pending")
	send(c.rcpts, prometheus.GaugeValue, deferredRcpts, "deferred")
	send(c.oldest, prometheus.GaugeValue, oldest)
	send(c.bytes, prometheus.GaugeValue, bytes)
}
