package admin

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/idna"
)

// MaxHopLabels caps the distinct values of a metric's hop label: past it,
// further next hops are counted as "other", so a relay that sends to every
// domain on the internet keeps a bounded number of series.
const MaxHopLabels = 100

// otherHop is the hop label of next hops beyond MaxHopLabels.
const otherHop = "other"

// hopLabels hands out hop label values: the first MaxHopLabels distinct
// next hops keep their own (ASCII, lower-case) name, later ones are
// "other". It is safe for concurrent use.
type hopLabels struct {
	mu   sync.Mutex
	seen map[string]struct{}
	max  int
}

func newHopLabels(max int) *hopLabels {
	return &hopLabels{seen: map[string]struct{}{}, max: max}
}

// label returns the label value for the next hop key.
func (h *hopLabels) label(key string) string {
	key = hopASCII(key)
	if key == "" {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.seen[key]; ok {
		return key
	}
	if len(h.seen) >= h.max {
		return otherHop
	}
	h.seen[key] = struct{}{}
	return key
}

// hopASCII lower-cases a next hop key ("domain", "host:port") and writes
// an internationalised domain name in A-labels (RFC 5890), so label values
// are ASCII.
func hopASCII(key string) string {
	key = strings.ToLower(key)
	if isASCII(key) {
		return key
	}
	host, port := key, ""
	if i := strings.LastIndexByte(key, ':'); i > 0 && !strings.Contains(key[i:], "]") {
		host, port = key[:i], key[i:]
	}
	if a, err := idna.Lookup.ToASCII(host); err == nil {
		return a + port
	}
	return asciiLabel(key)
}

// asciiLabel replaces every non-ASCII character of a label value by "_":
// label values stay ASCII whatever a log attribute holds.
func asciiLabel(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// seed creates the series whose label values are known in advance, at
// zero, so that every family is exported from the start and rate() and
// absent() work before the first event. Families with open-ended labels
// get their commonest values.
func (m *Metrics) seed() {
	for _, s := range []string{"sent", "deferred", "bounced"} {
		m.deliveries.WithLabelValues(s)
		m.delay.WithLabelValues(s)
	}
	for _, r := range [][3]string{{"sent", "250", "2.0.0"}, {"deferred", "451", "4.4.1"}, {"bounced", "550", "5.1.1"}} {
		m.deliveryReplies.WithLabelValues(r[0], r[1], r[2])
	}
	for _, s := range []string{"deferred", "bounced"} {
		m.hopFailures.WithLabelValues(otherHop, s)
	}
	for _, k := range []string{"connect", "tls", "routing"} {
		m.hopErrors.WithLabelValues(otherHop, k)
	}
	m.hopChanges.WithLabelValues(otherHop)
	for _, v := range []string{"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy", "help", "quit", "unknown"} {
		m.commands.WithLabelValues(v, "ok")
		m.commands.WithLabelValues(v, "failed")
	}
	for _, r := range [][3]string{
		{"CONNECT", "421", "4.7.0"}, {"TIMEOUT", "421", "4.4.2"}, {"PIPELINING", "554", "5.5.0"},
		{"MAIL", "501", "5.5.4"}, {"RCPT", "554", "5.7.1"}, {"RCPT", "452", "4.5.3"}, {"DATA", "552", "5.3.4"}, {"BDAT", "552", "5.3.4"},
	} {
		m.smtpdReplies.WithLabelValues(r[0], r[1], r[2])
	}
	m.auth.WithLabelValues("ok")
	m.auth.WithLabelValues("failed")
	for _, v := range []string{"TLSv1.2", "TLSv1.3"} {
		m.tls.WithLabelValues("inbound", "ok", v)
	}
	m.tls.WithLabelValues("inbound", "failed", "")
	m.tls.WithLabelValues("outbound", "failed", "")
	for _, k := range []string{"8bit->quoted-printable", "8bit->base64", "binary->base64", "none->quoted-printable", "header->encoded-word", "relabel", "repair"} {
		m.conversions.WithLabelValues(k)
	}
	for _, a := range []string{"hold", "release", "retry", "delete", "bounce", "transcripts"} {
		m.adminOps.WithLabelValues(a)
	}
	for _, k := range []string{"failed", "delayed", "delivered", "relayed"} {
		m.dsns.WithLabelValues(k)
	}
	m.dsnSuppressed.WithLabelValues("failed", "NOTIFY=NEVER")
	m.dsnSuppressed.WithLabelValues("failed", "null reverse path")
	for _, method := range []string{"dkim", "arc"} {
		for _, r := range []string{"pass", "fail", "permerror", "temperror", "none"} {
			m.authVerified.WithLabelValues(method, r)
		}
	}
	for _, w := range []string{"dkim", "arc", "kept"} {
		m.authSigned.WithLabelValues(w)
	}
	for _, e := range namedEvents() {
		m.events.WithLabelValues(e, "info")
	}
}

// newBuildInfo is ferry_build_info: 1, labelled with Ferry's version (set
// by SetBuildInfo), the VCS revision the binary was built from and the Go
// version.
func newBuildInfo() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_build_info",
		Help: "Always 1; the labels say which Ferry is running: version, VCS revision, Go version.",
	}, []string{"version", "revision", "goversion"})
}

// SetBuildInfo sets the version label of ferry_build_info (NewMetrics
// starts with "unknown").
func (m *Metrics) SetBuildInfo(version string) {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				rev = s.Value
			}
		}
	}
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(asciiLabel(version), rev, runtime.Version()).Set(1)
}
