// Package admin is Ferry's admin HTTP API: the queue operations of
// internal/queue (list with filters, show, hold, release, retry now, delete,
// bounce now), the hop-capability cache of internal/deliver, health and
// readiness probes, and Prometheus metrics on /metrics. It listens on a
// loopback address or a Unix socket, never on the public SMTP listeners.
//
// The API speaks JSON and is documented in docs/admin-api.md. Client is
// the Go client that "ferry queue" and "ferry explain" use.
//
// Metrics are gathered without reaching into other packages: Metrics.Handler
// wraps the mail log's slog.Handler and counts each event (connect, queued,
// reject, sent, deferred, bounced, converted, expired, …) by its name and
// attributes, and the queue's gauges are read from Queue.Stats and Queue.Walk
// when /metrics is scraped. Every metric uses the Metrics' own
// prometheus.Registry, never the global default one.
package admin
