package tlspolicy

import (
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/ferrymta/ferry/internal/route"
)

// Policy types of RFC 8460 §4.4 ("policy-type").
const (
	PolicyTypeSTS      = "sts"
	PolicyTypeTLSA     = "tlsa"
	PolicyTypeNoPolicy = "no-policy-found"
)

// failureKey identifies one failure-details entry (RFC 8460 §4.4).
type failureKey struct {
	resultType, mx, ip string
}

// counts holds the sessions of one policy domain and policy type since
// the last report: successes, failures by detail, and the policy itself.
type counts struct {
	success  int64
	failures map[failureKey]int64
	policy   []string // policy-string
	mxHosts  []string // mx-host (MTA-STS patterns)
}

// outcomes counts policy results per (domain, policy type) for TLS-RPT
// (RFC 8460 §4).
type outcomes struct {
	mu sync.Mutex
	m  map[[2]string]*counts
}

// record counts one session.
func (o *outcomes) record(domain, policyType string, policy, mxHosts []string, k failureKey) {
	o.add(domain, policyType, policy, mxHosts, k, 1)
}

// add counts n sessions.
func (o *outcomes) add(domain, policyType string, policy, mxHosts []string, k failureKey, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[[2]string]*counts{}
	}
	key := [2]string{domain, policyType}
	c := o.m[key]
	if c == nil {
		c = &counts{failures: map[failureKey]int64{}}
		o.m[key] = c
	}
	if policy != nil {
		c.policy, c.mxHosts = policy, mxHosts
	}
	if k.resultType == "" {
		c.success += n
		return
	}
	c.failures[k] += n
}

// take returns the counts and starts afresh, for a report.
func (o *outcomes) take() map[[2]string]*counts {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.m
	o.m = nil
	return m
}

// Errors a policy outcome can carry besides certificate errors.
var (
	// ErrNoStartTLS: the policy makes TLS mandatory and the host offered
	// no STARTTLS.
	ErrNoStartTLS = errors.New("STARTTLS not offered")
	// ErrRefused: the policy refused the host before connecting (an MX
	// not in an enforced MTA-STS policy, a failed TLSA lookup).
	ErrRefused = errors.New("host refused by policy")
)

// Outcome records the result of a policy check at t (nil: success) for
// TLS reporting. The relay's own policies (Local) are not reported.
func (e *Engine) Outcome(p HostPolicy, t route.Target, err error) {
	if p.Local {
		return
	}
	if err == nil && p.STSMismatch {
		err = ErrRefused // testing mode: an unlisted MX is a reported failure
	}
	typ, policy, mx := policyOf(p)
	k := failureKey{}
	if err != nil {
		k = failureKey{resultType: resultType(p, err), mx: p.Host, ip: t.IP.String()}
	}
	e.out.record(p.Domain, typ, policy, mx, k)
}

// policyOf returns the RFC 8460 policy type, policy strings and MX
// patterns of p.
func policyOf(p HostPolicy) (string, []string, []string) {
	switch {
	case p.Kind == DANE:
		s := make([]string, len(p.TLSA))
		for i, r := range p.TLSA {
			s[i] = r.Presentation()
		}
		return PolicyTypeTLSA, s, nil
	case p.STS != nil:
		return PolicyTypeSTS, p.STS.Lines(), append([]string(nil), p.STS.MX...)
	}
	return PolicyTypeNoPolicy, nil, nil
}

// Lines returns the policy as the lines of its text (RFC 8460 §4.4
// policy-string).
func (p STSPolicy) Lines() []string {
	out := []string{"version: STSv1", "mode: " + p.Mode}
	for _, m := range p.MX {
		out = append(out, "mx: "+m)
	}
	return append(out, fmt.Sprintf("max_age: %d", int64(p.MaxAge.Seconds())))
}

// resultType maps a check failure to an RFC 8460 §4.3 result type.
func resultType(p HostPolicy, err error) string {
	if p.Refuse != nil || errors.Is(err, ErrRefused) {
		if p.Kind == DANE {
			return "dnssec-invalid" // the TLSA lookup failed (RFC 8460 §4.3.1)
		}
		return "validation-failure"
	}
	if errors.Is(err, ErrNoStartTLS) {
		return "starttls-not-supported"
	}
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		return "certificate-expired"
	}
	var hn x509.HostnameError
	if errors.As(err, &hn) || strings.Contains(err.Error(), "certificate is valid for") {
		return "certificate-host-mismatch"
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "certificate-not-trusted"
	}
	switch p.Kind {
	case DANE:
		return "tlsa-invalid"
	case MTASTS, MTASTSTesting:
		return "certificate-not-trusted"
	}
	return "validation-failure"
}

// Counts are the sessions of one policy domain and policy type.
type Counts struct {
	// Success is the number of successful sessions.
	Success int64
	// Failures counts failed sessions by RFC 8460 §4.3 result type.
	Failures map[string]int64
}

// Counts returns the counts recorded for domain and a policy type
// ("sts", "tlsa", "no-policy-found") since the last report.
func (e *Engine) Counts(domain, policyType string) Counts {
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	out := Counts{Failures: map[string]int64{}}
	c := e.out.m[[2]string{domain, policyType}]
	if c == nil {
		return out
	}
	out.Success = c.success
	for k, v := range c.failures {
		out.Failures[k.resultType] += v
	}
	return out
}

// sortedKeys returns the failure keys of c in a stable order.
func (c *counts) sortedKeys() []failureKey {
	keys := make([]failureKey, 0, len(c.failures))
	for k := range c.failures {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.resultType != b.resultType {
			return a.resultType < b.resultType
		}
		if a.mx != b.mx {
			return a.mx < b.mx
		}
		return a.ip < b.ip
	})
	return keys
}
