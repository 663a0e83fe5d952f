package tlspolicy

import (
	"context"
)

// STS is the MTA-STS policy source (RFC 8461).
type STS struct{}

// stsResult is the MTA-STS policy of a domain, or why there is none.
type stsResult struct {
	reason string
}

// stsPolicy returns the MTA-STS policy of domain.
func (e *Engine) stsPolicy(ctx context.Context, domain string) stsResult {
	if e.sts == nil {
		return stsResult{reason: "MTA-STS off"}
	}
	return stsResult{reason: "MTA-STS off"}
}

// forHost applies the domain's MTA-STS policy to one MX host whose DANE
// check, p, did not apply; p's Reason says why.
func (r stsResult) forHost(domain, host string, p HostPolicy) HostPolicy {
	if p.Kind == Opportunistic {
		p.Reason += "; " + r.reason
	}
	return p
}
