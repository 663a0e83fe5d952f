package tlspolicy

import (
	"crypto/x509"
	"errors"
	"strings"
	"sync"

	"github.com/ferrymta/ferry/internal/route"
)

// counts holds the sessions of one policy domain and policy type: the
// successes and the failures by RFC 8460 §4.3 result type.
type counts struct {
	success  int64
	failures map[string]int64 // result type → sessions
}

// outcomes counts policy results per (domain, policy type) for TLS-RPT
// (RFC 8460 §4).
type outcomes struct {
	mu sync.Mutex
	m  map[[2]string]*counts
}

// record counts one result.
func (o *outcomes) record(domain, policyType, resultType string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[[2]string]*counts{}
	}
	k := [2]string{domain, policyType}
	c := o.m[k]
	if c == nil {
		c = &counts{failures: map[string]int64{}}
		o.m[k] = c
	}
	if resultType == "" {
		c.success++
		return
	}
	c.failures[resultType]++
}

// Outcome records the result of a policy check at t (nil: success) for
// TLS reporting.
func (e *Engine) Outcome(p HostPolicy, t route.Target, err error) {
	var typ string
	switch p.Kind {
	case DANE:
		typ = "tlsa"
	case MTASTS, MTASTSTesting:
		typ = "sts"
	default:
		typ = "no-policy-found"
	}
	e.out.record(p.Domain, typ, resultType(p, err))
}

// ErrNoStartTLS is the outcome for a host whose policy makes TLS mandatory
// and that offered no STARTTLS.
var ErrNoStartTLS = errors.New("STARTTLS not offered")

// resultType maps a check failure to an RFC 8460 §4.3 result type; "" for
// success.
func resultType(p HostPolicy, err error) string {
	if err == nil {
		return ""
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
	c := e.out.m[[2]string{domain, policyType}]
	if c == nil {
		return Counts{Failures: map[string]int64{}}
	}
	out := Counts{Success: c.success, Failures: map[string]int64{}}
	for k, v := range c.failures {
		out.Failures[k] = v
	}
	return out
}
