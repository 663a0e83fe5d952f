package tlspolicy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
	"github.com/ferrymta/ferry/internal/tlspolicy/dnstest"
)

// TestSTSFetchLimits: what RFC 8461 §3.3 refuses of a policy server —
// redirects, other media types, oversized or malformed policies, slow
// answers, untrusted certificates — leaves the domain without a policy and
// names the TLS-RPT result type.
func TestSTSFetchLimits(t *testing.T) {
	ca := testrelay.NewTestCA(t, "CA")
	names := []string{"ok", "redirect", "ctype", "big", "syntax", "slow", "status"}
	var hosts []string
	for _, n := range names {
		hosts = append(hosts, "mta-sts."+n+".pol.test")
	}
	good := "version: STSv1\nmode: enforce\nmx: mx.pol.test\nmax_age: 3600\n"
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var fetches atomic.Int32
	var down atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		label := strings.Split(r.Host, ".")[1] // mta-sts.LABEL.pol.test
		w.Header().Set("Content-Type", "text/plain")
		switch label {
		case "redirect":
			http.Redirect(w, r, "https://mta-sts.ok.pol.test/.well-known/mta-sts.txt", http.StatusFound)
		case "ctype":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(good))
		case "big":
			_, _ = w.Write([]byte(good + strings.Repeat("x: y\n", maxPolicySize/4)))
		case "syntax":
			_, _ = w.Write([]byte("version: STSv1\nmode: sometimes\n"))
		case "slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "status":
			http.NotFound(w, r)
		default:
			_, _ = w.Write([]byte(good))
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "sts", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), hosts...).TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	zone := dnstest.ZoneHead("pol.test")
	for _, n := range names {
		zone += "mta-sts." + n + " A 127.0.0.1\n_mta-sts." + n + " TXT \"v=STSv1; id=1\"\n"
	}
	zone += "_mta-sts.two TXT \"v=STSv1; id=1\"\n_mta-sts.two TXT \"v=STSv1; id=2\"\n"
	auth := dnstest.StartAuth(t, zone)
	r, err := NewResolver(ResolverConfig{Servers: []string{auth.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	newSTS := func(roots bool, timeout time.Duration) *STS {
		cfg := STSConfig{Resolver: r, CacheDir: t.TempDir(), Port: port, Timeout: timeout}
		if roots {
			cfg.RootCAs = ca.Roots
		}
		s, err := NewSTS(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newSTS(true, 2*time.Second)
	ctx := context.Background()
	for _, tc := range []struct {
		domain, typ, reason string
	}{
		{"ok.pol.test", "", "fetched"},
		{"redirect.pol.test", "sts-policy-fetch-error", "HTTP 302"},
		{"ctype.pol.test", "sts-policy-invalid", "text/html"},
		{"big.pol.test", "sts-policy-invalid", "larger than"},
		{"syntax.pol.test", "sts-policy-invalid", "mode must be"},
		{"slow.pol.test", "sts-policy-fetch-error", "deadline exceeded"},
		{"status.pol.test", "sts-policy-fetch-error", "HTTP 404"},
		{"two.pol.test", "", "2 STSv1 records"},
		{"none.pol.test", "", "no MTA-STS record"},
	} {
		res := s.Policy(ctx, tc.domain)
		if res.fetchErr != tc.typ || !strings.Contains(res.reason, tc.reason) || (tc.domain == "ok.pol.test") != (res.policy != nil) {
			t.Errorf("%s: policy %v, reason %q, type %q; want type %q, reason with %q", tc.domain, res.policy, res.reason, res.fetchErr, tc.typ, tc.reason)
		}
	}
	// Refresh per max_age (3600s): none in the first half, a fetch after
	// it, and while the server is down the cached policy stays until it
	// expires.
	clock := time.Now()
	rs, err := NewSTS(STSConfig{Resolver: r, CacheDir: t.TempDir(), Port: port, RootCAs: ca.Roots, Timeout: 10 * time.Second, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		after   time.Duration
		down    bool
		fetched bool
		policy  bool
	}{
		{0, false, true, true},
		{20 * time.Minute, false, false, true},
		{15 * time.Minute, false, true, true}, // 35 minutes: past half
		{35 * time.Minute, true, true, true},  // 70 minutes after the refresh: stale, fetch fails, cache holds
		{30 * time.Minute, true, true, false}, // 100 minutes: expired, no policy
	} {
		clock = clock.Add(step.after)
		down.Store(step.down)
		before := fetches.Load()
		res := rs.Policy(ctx, "ok.pol.test")
		if (fetches.Load() != before) != step.fetched || (res.policy != nil) != step.policy {
			t.Errorf("after %v more (server down %v): fetched %v, policy %v (%s)", step.after, step.down, fetches.Load() != before, res.policy != nil, res.reason)
		}
	}
	down.Store(false)
	// A read-only cache (probe, explain) keeps what it fetched in memory
	// and never writes the spool.
	dir := filepath.Join(t.TempDir(), "spool", "mta-sts")
	ro, err := NewSTS(STSConfig{Resolver: r, CacheDir: dir, ReadOnly: true, Port: port, RootCAs: ca.Roots, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res := ro.Policy(ctx, "ok.pol.test"); res.policy == nil {
		t.Errorf("read-only cache: %+v", res)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a read-only cache wrote the spool: %v", err)
	}
	// The system roots do not know the test CA: sts-webpki-invalid.
	if res := newSTS(false, 10*time.Second).Policy(ctx, "ok.pol.test"); res.policy != nil || res.fetchErr != "sts-webpki-invalid" {
		t.Errorf("untrusted policy server: %+v", res)
	}
}
