package tlspolicy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// STSPolicy is a parsed MTA-STS policy (RFC 8461 §3.2).
type STSPolicy struct {
	// Mode is "enforce", "testing" or "none".
	Mode string
	// MX are the MX host patterns ("mail.example.com", "*.example.net").
	MX []string
	// MaxAge is how long the policy may be cached.
	MaxAge time.Duration
}

// Limits of MTA-STS policy fetches.
const (
	// maxPolicySize bounds the policy body (RFC 8461 §3.3 suggests 64 KiB).
	maxPolicySize = 64 << 10
	// maxMaxAge is RFC 8461 §3.2's upper bound for max_age: 31557600s.
	maxMaxAge = 31557600 * time.Second
	// defaultFetchTimeout bounds one policy fetch (RFC 8461 §3.3
	// suggests about a minute).
	defaultFetchTimeout = 60 * time.Second
)

// ParseSTSPolicy parses a policy body (RFC 8461 §3.2): "key: value" lines
// ending in CRLF or LF, version STSv1 first, mode, max_age and, unless the
// mode is none, at least one mx. Unknown keys are ignored.
func ParseSTSPolicy(body string) (STSPolicy, error) {
	var p STSPolicy
	lines := strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n")
	sawVersion, sawAge := false, false
	for i, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return p, fmt.Errorf("MTA-STS policy line %d: no \"key: value\": %q", i+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "version":
			if v != "STSv1" || sawVersion || i != 0 {
				return p, fmt.Errorf("MTA-STS policy: version must be STSv1 on the first line, got %q on line %d", v, i+1)
			}
			sawVersion = true
		case "mode":
			if v != "enforce" && v != "testing" && v != "none" {
				return p, fmt.Errorf("MTA-STS policy: mode must be enforce, testing or none, got %q", v)
			}
			p.Mode = v
		case "max_age":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || len(v) > 10 {
				return p, fmt.Errorf("MTA-STS policy: max_age must be seconds, got %q", v)
			}
			p.MaxAge = min(time.Duration(n)*time.Second, maxMaxAge)
			sawAge = true
		case "mx":
			p.MX = append(p.MX, strings.ToLower(strings.TrimSuffix(v, ".")))
		}
	}
	switch {
	case !sawVersion:
		return p, errors.New("MTA-STS policy: no version: STSv1 line")
	case p.Mode == "":
		return p, errors.New("MTA-STS policy: no mode")
	case !sawAge:
		return p, errors.New("MTA-STS policy: no max_age")
	case p.Mode != "none" && len(p.MX) == 0:
		return p, errors.New("MTA-STS policy: no mx")
	}
	return p, nil
}

// MatchMX reports whether an MX host name matches one of the policy's
// patterns (RFC 8461 §4.1: a "*." pattern stands for exactly one label).
func (p STSPolicy) MatchMX(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if label, parent, found := strings.Cut(host, "."); found && label != "" && parent == rest {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// STSConfig configures an STS.
type STSConfig struct {
	// Resolver looks up _mta-sts TXT records and the policy host.
	Resolver *Resolver
	// CacheDir holds the policy cache (in the spool); required.
	CacheDir string
	// ReadOnly uses the cache directory without writing to it (policies
	// fetched are kept in memory only), for commands that look at a
	// server's spool without owning it.
	ReadOnly bool
	// RootCAs verify policy servers; nil: the system roots. Tests set a
	// test CA.
	RootCAs *x509.CertPool
	// Port is the HTTPS port of policy servers; 0: 443. A test knob.
	Port int
	// Timeout bounds one fetch; 0: 60s.
	Timeout time.Duration
	// Logger receives fetch and cache log lines; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// STS is the MTA-STS policy source (RFC 8461): TXT discovery, HTTPS
// fetch, and a cache in the spool that survives restarts.
type STS struct {
	cfg   STSConfig
	http  *http.Client
	cache *stsCache
	// fetching holds a mutex per domain, so that one domain's policy is
	// fetched once at a time while other domains' go on.
	fetching sync.Map
}

// NewSTS returns an STS for cfg.
func NewSTS(cfg STSConfig) (*STS, error) {
	if cfg.Resolver == nil || cfg.CacheDir == "" {
		return nil, errors.New("tlspolicy: MTA-STS needs a resolver and a cache directory")
	}
	if cfg.Port == 0 {
		cfg.Port = 443
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultFetchTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cache, err := openSTSCache(cfg.CacheDir, cfg.ReadOnly)
	if err != nil {
		return nil, err
	}
	s := &STS{cfg: cfg, cache: cache, http: newHTTPClient(cfg.Resolver, cfg.RootCAs, cfg.Timeout)}
	// RFC 8461 §3.3: redirects are not followed.
	s.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s, nil
}

// newHTTPClient returns an HTTPS client that resolves host names with
// Ferry's DNS (like the MX hosts) and verifies servers against roots
// (nil: the system's).
func newHTTPClient(r *Resolver, roots *x509.CertPool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, CipherSuites: smtp.CipherSuites()},
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				ips, err := r.LookupNetIP(ctx, "ip", host)
				if err != nil {
					return nil, err
				}
				var lastErr error
				for _, ip := range ips {
					c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
					if err == nil {
						return c, nil
					}
					lastErr = err
				}
				return nil, lastErr
			},
		},
	}
}

// stsResult is the MTA-STS policy of a domain, or why there is none.
type stsResult struct {
	policy *STSPolicy
	reason string
	// fetchErr is the RFC 8460 result type of a failed discovery or
	// fetch ("sts-policy-fetch-error", "sts-policy-invalid",
	// "sts-webpki-invalid"), for TLS-RPT.
	fetchErr string
}

// txtID returns the id of the domain's _mta-sts TXT record (RFC 8461
// §3.1), "" with a nil error when there is none.
func (s *STS) txtID(ctx context.Context, domain string) (string, error) {
	txts, err := s.cfg.Resolver.LookupTXT(ctx, "_mta-sts."+domain)
	if err != nil {
		if isNotFound(err) {
			return "", nil
		}
		return "", err
	}
	var ids []string
	for _, t := range txts {
		if !strings.HasPrefix(t, "v=STSv1;") && t != "v=STSv1" {
			continue
		}
		for _, f := range strings.Split(t, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			if k == "id" {
				ids = append(ids, v)
			}
		}
	}
	if len(ids) != 1 {
		if len(ids) == 0 {
			return "", nil
		}
		return "", fmt.Errorf("_mta-sts.%s has %d STSv1 records (RFC 8461 §3.1 wants one)", domain, len(ids))
	}
	return ids[0], nil
}

// Policy returns the MTA-STS policy in force for domain (RFC 8461 §5.1):
// the cached one while its TXT id is unchanged and it is in the first half
// of its max_age, else a new fetch (so a policy in use is refreshed before
// it expires); a failed discovery or fetch keeps a cached policy that has
// not expired.
func (s *STS) Policy(ctx context.Context, domain string) stsResult {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	now := s.cfg.Now()
	cached, haveCache := s.cache.get(domain)
	fresh := haveCache && now.Before(cached.Expires)
	id, err := s.txtID(ctx, domain)
	switch {
	case err != nil && fresh:
		return cached.result("cached MTA-STS policy (TXT lookup failed: " + shortDNSErr(err) + ")")
	case err != nil:
		return stsResult{reason: "no MTA-STS policy: TXT lookup failed: " + shortDNSErr(err)}
	case id == "" && fresh:
		// RFC 8461 §5.1: a vanished record does not end a cached policy.
		return cached.result("cached MTA-STS policy (no _mta-sts TXT record now)")
	case id == "":
		return stsResult{reason: "no MTA-STS record"}
	case fresh && cached.ID == id && !cached.stale(now):
		return cached.result("cached MTA-STS policy id " + id)
	}
	mu, _ := s.fetching.LoadOrStore(domain, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if e, ok := s.cache.get(domain); ok && e.ID == id && now.Before(e.Expires) && !e.stale(now) {
		return e.result("cached MTA-STS policy id " + id) // fetched meanwhile
	}
	body, p, typ, err := s.fetch(ctx, domain)
	if err != nil {
		s.cfg.Logger.Warn(fmt.Sprintf("tlspolicy: MTA-STS policy fetch for %s failed: %v", domain, err),
			"event", "mta_sts_fetch_failed", "domain", domain, "err", err.Error())
		if fresh {
			r := cached.result("cached MTA-STS policy (fetch failed: " + err.Error() + ")")
			r.fetchErr = typ
			return r
		}
		return stsResult{reason: "no MTA-STS policy: fetch failed: " + err.Error(), fetchErr: typ}
	}
	e := stsEntry{Domain: domain, ID: id, Fetched: now, Expires: now.Add(p.MaxAge), Body: body}
	if err := s.cache.put(e); err != nil {
		s.cfg.Logger.Error("tlspolicy: MTA-STS cache", "domain", domain, "err", err)
	}
	s.cfg.Logger.Info(fmt.Sprintf("tlspolicy: MTA-STS policy for %s: mode %s, mx %s, max_age %s", domain, p.Mode, strings.Join(p.MX, " "), p.MaxAge),
		"event", "mta_sts_fetched", "domain", domain, "id", id, "mode", p.Mode)
	return stsResult{policy: &p, reason: "MTA-STS policy id " + id + " fetched"}
}

// fetch gets and parses https://mta-sts.DOMAIN/.well-known/mta-sts.txt
// (RFC 8461 §3.3). On failure it also returns the RFC 8460 result type.
func (s *STS) fetch(ctx context.Context, domain string) (string, STSPolicy, string, error) {
	host := "mta-sts." + domain
	if s.cfg.Port != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(s.cfg.Port))
	}
	url := "https://" + host + "/.well-known/mta-sts.txt"
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", STSPolicy{}, "sts-policy-fetch-error", err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return "", STSPolicy{}, "sts-webpki-invalid", fmt.Errorf("%s: %w", url, err)
		}
		return "", STSPolicy{}, "sts-policy-fetch-error", fmt.Errorf("%s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", STSPolicy{}, "sts-policy-fetch-error", fmt.Errorf("%s: HTTP %s (RFC 8461 §3.3 wants 200, redirects are not followed)", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "text/plain") {
		return "", STSPolicy{}, "sts-policy-invalid", fmt.Errorf("%s: media type %q, want text/plain", url, ct)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicySize+1))
	if err != nil {
		return "", STSPolicy{}, "sts-policy-fetch-error", fmt.Errorf("%s: %w", url, err)
	}
	if len(b) > maxPolicySize {
		return "", STSPolicy{}, "sts-policy-invalid", fmt.Errorf("%s: policy larger than %d octets", url, maxPolicySize)
	}
	p, err := ParseSTSPolicy(string(b))
	if err != nil {
		return "", STSPolicy{}, "sts-policy-invalid", fmt.Errorf("%s: %w", url, err)
	}
	return string(b), p, "", nil
}

// stsPolicy returns the MTA-STS policy of domain, or why there is none.
func (e *Engine) stsPolicy(ctx context.Context, domain string) stsResult {
	if e.sts == nil {
		return stsResult{reason: "MTA-STS off"}
	}
	r := e.sts.Policy(ctx, domain)
	if r.fetchErr != "" {
		var policy, mx []string
		if r.policy != nil {
			policy, mx = r.policy.Lines(), r.policy.MX
		}
		e.out.record(domain, PolicyTypeSTS, policy, mx, failureKey{resultType: r.fetchErr, mx: "mta-sts." + domain})
	}
	return r
}

// forHost applies the domain's MTA-STS policy to one MX host whose DANE
// check, p, did not apply (RFC 8461 §2: DANE takes precedence); p's Reason
// says why.
func (r stsResult) forHost(domain, host string, p HostPolicy) HostPolicy {
	if r.policy == nil || r.policy.Mode == "none" {
		p.Reason += "; " + r.reason
		if r.policy != nil {
			p.Reason += ", mode none"
		}
		return p
	}
	pol := *r.policy
	p.STS = &pol
	match := pol.MatchMX(host)
	switch {
	case pol.Mode == "enforce" && match:
		p.Kind = MTASTS
		p.Reason = fmt.Sprintf("%s; %s, mode enforce, MX %s matches", p.Reason, r.reason, host)
	case pol.Mode == "enforce":
		// RFC 8461 §4.1: an MX the policy does not list is not used.
		rep := ReplyDANE(fmt.Sprintf("MTA-STS: MX %s is not in the enforced policy of %s (mx: %s)", host, domain, strings.Join(pol.MX, ", ")))
		p.Kind, p.Refuse = MTASTS, &rep
		p.Reason = fmt.Sprintf("%s; %s, mode enforce, MX %s does not match", p.Reason, r.reason, host)
	default:
		if p.Kind == Opportunistic {
			p.Kind = MTASTSTesting
		}
		p.Reason = fmt.Sprintf("%s; %s, mode testing (failures reported, not enforced)", p.Reason, r.reason)
		if !match {
			p.Reason += ", MX " + host + " does not match"
			p.STSMismatch = true
		}
	}
	return p
}
