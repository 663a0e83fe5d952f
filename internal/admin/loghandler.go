package admin

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Handler wraps next, the mail log's handler, so that every event of
// level Info or above is counted in m before it is passed on. Counting
// does not depend on next's level: a log at "warn" still feeds the
// metrics. Attributes added with WithAttrs count as the event's own;
// attributes inside a group (WithGroup) are not looked at.
func (m *Metrics) Handler(next slog.Handler) slog.Handler {
	return &metricsHandler{m: m, next: next}
}

// metricsHandler is the slog.Handler Metrics.Handler returns.
type metricsHandler struct {
	m       *Metrics
	next    slog.Handler
	attrs   []slog.Attr
	grouped bool
}

// Enabled reports true for every level the metrics count, and otherwise
// what next says.
func (h *metricsHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

// Handle counts the event and passes it to next when next wants it.
func (h *metricsHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		ev := eventAttrs{}
		for _, a := range h.attrs {
			ev[a.Key] = a.Value.Resolve()
		}
		if !h.grouped {
			r.Attrs(func(a slog.Attr) bool {
				ev[a.Key] = a.Value.Resolve()
				return true
			})
		}
		h.m.observe(r.Message, r.Level, ev)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

// WithAttrs returns a handler whose events carry as.
func (h *metricsHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if !h.grouped {
		c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	}
	return &c
}

// WithGroup returns a handler whose later attributes are in group name.
func (h *metricsHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	if name != "" {
		c.grouped = true
	}
	return &c
}

// eventAttrs are one event's top-level attributes by key.
type eventAttrs map[string]slog.Value

func (e eventAttrs) str(key string) string {
	v, ok := e[key]
	if !ok {
		return ""
	}
	return v.String()
}

// seconds reads a delay attribute: float seconds (delivery), a duration
// (the queue), or a number in a string.
func (e eventAttrs) seconds(key string) (float64, bool) {
	v, ok := e[key]
	if !ok {
		return 0, false
	}
	switch v.Kind() {
	case slog.KindFloat64:
		return v.Float64(), true
	case slog.KindDuration:
		return v.Duration().Seconds(), true
	case slog.KindInt64:
		return float64(v.Int64()), true
	case slog.KindString:
		f, err := strconv.ParseFloat(v.String(), 64)
		return f, err == nil
	}
	return 0, false
}

func (e eventAttrs) int(key string) (int64, bool) {
	v, ok := e[key]
	if !ok {
		return 0, false
	}
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64(), true
	case slog.KindUint64:
		return int64(v.Uint64()), true
	case slog.KindString:
		n, err := strconv.ParseInt(v.String(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Event names as the mail log writes them (see docs/logging.md).
const (
	evTLSFailedIn   = "TLS handshake failed"
	evTLSFailedOut  = "deliver: TLS failed, retrying without TLS"
	evConnectFailed = "deliver: connect failed"
	evRoutingFailed = "deliver: routing failed"
	evAuthOK        = "authenticated"
	evAuthFailed    = "authentication failed"
)

// namedEvents are the events ferry_log_events_total counts; other lines
// (whose messages may hold IDs) are not counted there.
func namedEvents() []string {
	return []string{"connect", "queued", "reject", "disconnect", "sent", "deferred", "bounced", "converted",
		"expired", "removed", "deleted", "admin", "tls", "not queued", "hop changed", "dsn", "dsn-suppressed", "dsn-deferred",
		evTLSFailedIn, evTLSFailedOut, evConnectFailed, evRoutingFailed, evAuthOK, evAuthFailed}
}

// namedEvent reports whether name is one of namedEvents.
func namedEvent(name string) bool { return slices.Contains(namedEvents(), name) }

// observe counts one event. Delivery writes Postfix-style messages and
// names the event in the "event" attribute; every other stage uses the
// event name as the message.
func (m *Metrics) observe(msg string, level slog.Level, ev eventAttrs) {
	name := msg
	if e := ev.str("event"); e != "" {
		name = e
	} else if ev.str("hop") != "" && ev.str("change") != "" {
		name = "hop changed"
	}
	if namedEvent(name) {
		m.events.WithLabelValues(name, strings.ToLower(level.String())).Inc()
	}
	switch name {
	case "connect":
		m.connections.Inc()
	case "disconnect":
		m.countCommands(ev.str("commands"))
	case "reject":
		code, enh := splitReply(ev.str("reply"))
		m.smtpdReplies.WithLabelValues(asciiLabel(ev.str("stage")), code, enh).Inc()
	case "queued":
		m.accepted.Inc()
		if n, ok := ev.int("size"); ok && n > 0 {
			m.acceptedBytes.Add(float64(n))
		}
	case "sent", "deferred", "bounced":
		m.deliveries.WithLabelValues(name).Inc()
		code, enh := splitReply(ev.str("reply"))
		m.deliveryReplies.WithLabelValues(name, code, enh).Inc()
		if d, ok := ev.seconds("delay"); ok && d >= 0 {
			m.delay.WithLabelValues(name).Observe(d)
		}
		if name != "sent" {
			m.hopFailures.WithLabelValues(m.hops.label(domainOf(ev.str("to"))), name).Inc()
		}
	case "converted":
		m.converted.Inc()
		for _, k := range conversionKinds(ev.str("summary")) {
			m.conversions.WithLabelValues(k).Inc()
		}
		if v, ok := ev["dkim_broken"]; ok && v.Kind() == slog.KindBool && v.Bool() {
			m.dkimBroken.Inc()
		}
	case "verified":
		for _, clause := range strings.Split(ev.str("results"), "; ") {
			method, result, ok := strings.Cut(clause, "=")
			if !ok {
				continue
			}
			result, _, _ = strings.Cut(result, " ")
			m.authVerified.WithLabelValues(asciiLabel(method), asciiLabel(result)).Inc()
		}
	case "signed":
		summary := ev.str("summary")
		for what, marker := range map[string]string{"dkim": "DKIM-signed", "arc": "ARC set added", "kept": "not DKIM-signed again"} {
			if strings.Contains(summary, marker) {
				m.authSigned.WithLabelValues(what).Inc()
			}
		}
	case "expired":
		n, ok := ev.int("rcpts")
		if !ok {
			n = 1
		}
		m.expired.Add(float64(n))
	case "removed":
		m.finished.Inc()
	case "deleted":
		m.deleted.Inc()
	case "admin":
		m.adminOps.WithLabelValues(asciiLabel(ev.str("action"))).Inc()
	case "dsn":
		m.dsns.WithLabelValues(asciiLabel(ev.str("kind"))).Inc()
	case "dsn-suppressed":
		m.dsnSuppressed.WithLabelValues(asciiLabel(ev.str("kind")), asciiLabel(ev.str("reason"))).Inc()
	case "tls":
		m.tls.WithLabelValues("inbound", "ok", asciiLabel(ev.str("version"))).Inc()
	case evTLSFailedIn:
		m.tls.WithLabelValues("inbound", "failed", "").Inc()
	case evTLSFailedOut:
		m.tls.WithLabelValues("outbound", "failed", "").Inc()
		m.hopErrors.WithLabelValues(m.hops.label(relayHop(ev.str("relay"))), "tls").Inc()
	case evConnectFailed:
		m.hopErrors.WithLabelValues(m.hops.label(relayHop(ev.str("relay"))), "connect").Inc()
	case evRoutingFailed:
		m.hopErrors.WithLabelValues(m.hops.label(ev.str("hop")), "routing").Inc()
	case evAuthOK:
		m.auth.WithLabelValues("ok").Inc()
	case evAuthFailed:
		m.auth.WithLabelValues("failed").Inc()
	case "hop changed":
		m.hopChanges.WithLabelValues(m.hops.label(ev.str("hop"))).Inc()
	}
}

// countCommands reads a disconnect line's counts, "ehlo=1 mail=1 rcpt=1/2
// data=1 quit=1 commands=5/6": verb=TOTAL, or verb=OK/TOTAL when some
// failed.
func (m *Metrics) countCommands(s string) {
	for _, f := range strings.Fields(s) {
		verb, count, ok := strings.Cut(f, "=")
		if !ok || verb == "commands" {
			continue
		}
		okN, total := count, count
		if a, b, has := strings.Cut(count, "/"); has {
			okN, total = a, b
		}
		nOK, err1 := strconv.Atoi(okN)
		nTotal, err2 := strconv.Atoi(total)
		if err1 != nil || err2 != nil || nOK > nTotal {
			continue
		}
		if nOK > 0 {
			m.commands.WithLabelValues(asciiLabel(verb), "ok").Add(float64(nOK))
		}
		if nTotal > nOK {
			m.commands.WithLabelValues(asciiLabel(verb), "failed").Add(float64(nTotal - nOK))
		}
	}
}

// splitReply returns the code and enhanced code of a reply written as
// "550 5.1.1 text" ("" for parts that are missing).
func splitReply(s string) (code, enhanced string) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f[0]) != 3 {
		return "", ""
	}
	if _, err := strconv.Atoi(f[0]); err != nil {
		return "", ""
	}
	code = f[0]
	if len(f) > 1 && isEnhanced(f[1]) {
		enhanced = f[1]
	}
	return code, enhanced
}

// isEnhanced reports whether s looks like "class.subject.detail" (RFC 3463).
func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil || p == "" || len(p) > 3 {
			return false
		}
	}
	return true
}

// domainOf returns the lower-cased domain of "local@domain": the queue's
// next-hop key.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

// relayHop turns a relay as logged, "host[ip]:port" or "[ip]:port", into
// the hop key "host:port" ("ip:port").
func relayHop(relay string) string {
	open := strings.IndexByte(relay, '[')
	end := strings.LastIndexByte(relay, ']')
	switch {
	case open < 0 || end < open:
		return relay
	case open == 0:
		if port, ok := strings.CutPrefix(relay[end+1:], ":"); ok {
			return net.JoinHostPort(relay[1:end], port)
		}
		return relay[1:end] + relay[end+1:]
	}
	return relay[:open] + relay[end+1:]
}

// conversionKinds reads the summary of a converted event into kinds of
// change, in ASCII for label values: "8bit->quoted-printable",
// "none->base64" (a leaf without a Content-Transfer-Encoding field),
// "header->encoded-word", "relabel" and "repair". It reads delivery's summary ("part 1.1 8bit→quoted-printable,
// 1 header field(s) RFC 2047-encoded, 812→840 octets") and
// downgrade.Report.Summary's ("converted 2 parts (8bit→quoted-printable,
// binary→base64), 1 header encoded").
func conversionKinds(summary string) []string {
	var kinds []string
	add := func(k string) {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	summary = strings.ReplaceAll(summary, "(none)", "none")
	for _, item := range strings.Split(summary, ",") {
		item = strings.TrimSpace(item)
		switch {
		case strings.Contains(item, "header"):
			add("header->encoded-word")
		case strings.Contains(item, "relabelled"):
			add("relabel")
		case strings.Contains(item, "repair"):
			add("repair")
		case strings.HasSuffix(item, "octets"):
		default:
			f := strings.Fields(item)
			if len(f) == 0 {
				continue
			}
			if k := strings.Trim(f[len(f)-1], "()"); strings.Contains(k, "→") {
				add(asciiLabel(strings.ReplaceAll(k, "→", "->")))
			}
		}
	}
	return kinds
}
