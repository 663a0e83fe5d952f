package deliver

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// HopInfo is what Ferry last saw of one next hop (host:port).
type HopInfo struct {
	// Hop is "host:port".
	Hop string `json:"hop"`
	// Relay is the last address used, "host[ip]:port".
	Relay string `json:"relay"`
	// Greeting is the hop's last 220 greeting.
	Greeting string `json:"greeting"`
	// ESMTP is false when the hop refused EHLO and Ferry fell back to HELO.
	ESMTP bool `json:"esmtp"`
	// Keywords are the EHLO keywords as offered (after STARTTLS when TLS
	// is on), before any route discard list.
	Keywords smtp.Extensions `json:"keywords"`
	// KeywordsBeforeTLS are the keywords offered before STARTTLS, when TLS
	// was used.
	KeywordsBeforeTLS smtp.Extensions `json:"keywords_before_tls,omitempty"`
	// TLS says whether the session ran over TLS; TLSVersion and TLSCipher
	// name what was negotiated.
	TLS        bool   `json:"tls"`
	TLSVersion string `json:"tls_version,omitempty"`
	TLSCipher  string `json:"tls_cipher,omitempty"`
	// FirstSeen and Seen are when the hop was first and last seen.
	FirstSeen time.Time `json:"first_seen"`
	Seen      time.Time `json:"seen"`
	// Changes describe what differed at Seen from the sighting before,
	// e.g. "stopped offering 8BITMIME"; empty when nothing changed.
	Changes []string `json:"changes,omitempty"`
	// ChangedAt is when Changes were recorded.
	ChangedAt time.Time `json:"changed_at,omitzero"`
}

// HopInfoOf describes the session a client has set up.
func HopInfoOf(c *Client, now time.Time) HopInfo {
	info := HopInfo{
		Hop:      c.target.HopKey(),
		Relay:    c.target.String(),
		Greeting: c.greeting.String(),
		ESMTP:    c.esmtp,
		Keywords: maps.Clone(c.offered),
		Seen:     now,
	}
	if st, ok := c.TLS(); ok {
		info.TLS = true
		info.TLSVersion = tls.VersionName(st.Version)
		info.TLSCipher = tls.CipherSuiteName(st.CipherSuite)
		info.KeywordsBeforeTLS = maps.Clone(c.preTLS)
	}
	return info
}

// HopCache is the hop-capability cache: per next hop, the last EHLO
// keywords, TLS state, when seen, and what changed since the sighting
// before. It is safe for concurrent use.
type HopCache struct {
	mu   sync.Mutex
	hops map[string]HopInfo
	log  *slog.Logger
}

// NewHopCache returns an empty cache that logs changes to log (nil:
// slog.Default()).
func NewHopCache(log *slog.Logger) *HopCache {
	if log == nil {
		log = slog.Default()
	}
	return &HopCache{hops: make(map[string]HopInfo), log: log}
}

// Record stores a sighting and returns what changed since the previous
// one; each change is logged, at warning level when the hop stopped
// offering something.
func (h *HopCache) Record(info HopInfo) []string {
	h.mu.Lock()
	prev, seen := h.hops[info.Hop]
	info.FirstSeen = info.Seen
	var changes []string
	if seen {
		info.FirstSeen = prev.FirstSeen
		changes = diffHop(prev, info)
		if len(changes) == 0 {
			info.Changes, info.ChangedAt = prev.Changes, prev.ChangedAt
		} else {
			info.Changes, info.ChangedAt = changes, info.Seen
		}
	}
	h.hops[info.Hop] = info
	h.mu.Unlock()
	for _, c := range changes {
		level := slog.LevelInfo
		if len(c) > 8 && c[:8] == "stopped " {
			level = slog.LevelWarn
		}
		h.log.Log(context.Background(), level, fmt.Sprintf("hop %s: %s", info.Hop, c), "hop", info.Hop, "change", c)
	}
	return changes
}

// Get returns what is known of one hop ("host:port").
func (h *HopCache) Get(hop string) (HopInfo, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	info, ok := h.hops[hop]
	return info, ok
}

// All returns every known hop, sorted by hop.
func (h *HopCache) All() []HopInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Collect(maps.Values(h.hops))
	slices.SortFunc(out, func(a, b HopInfo) int {
		switch {
		case a.Hop < b.Hop:
			return -1
		case a.Hop > b.Hop:
			return 1
		}
		return 0
	})
	return out
}

// diffHop lists what changed from prev to cur in plain words.
func diffHop(prev, cur HopInfo) []string {
	var out []string
	if prev.ESMTP && !cur.ESMTP {
		out = append(out, "stopped accepting EHLO (HELO only)")
	} else if !prev.ESMTP && cur.ESMTP {
		out = append(out, "now accepts EHLO")
	}
	if prev.TLS && !cur.TLS {
		out = append(out, "stopped using TLS")
	} else if !prev.TLS && cur.TLS {
		out = append(out, "now uses TLS")
	}
	for _, k := range prev.Keywords.Keywords() {
		if !cur.Keywords.Has(k) {
			out = append(out, "stopped offering "+k)
		}
	}
	for _, k := range cur.Keywords.Keywords() {
		if !prev.Keywords.Has(k) {
			out = append(out, "now offers "+k)
		} else if pv, cv := prev.Keywords[k], cur.Keywords[k]; pv != cv {
			out = append(out, fmt.Sprintf("%s changed from %q to %q", k, pv, cv))
		}
	}
	return out
}
