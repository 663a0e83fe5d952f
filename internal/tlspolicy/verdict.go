package tlspolicy

import (
	"context"

	"github.com/ferrymta/ferry/internal/route"
)

// Verdict explains the policy of one MX host: what DANE and MTA-STS each
// say about it and which policy applies, for "ferry probe DOMAIN".
type Verdict struct {
	// Host is the MX host name.
	Host string
	// DANE is the DANE check's result: Kind DANE (or Encrypt) when DANE
	// applies, with the reason either way.
	DANE HostPolicy
	// DANEApplies is set when DANE decides the host's policy.
	DANEApplies bool
	// STS is the domain's MTA-STS policy, nil when there is none.
	STS *STSPolicy
	// STSReason says how the MTA-STS policy was found, or why not.
	STSReason string
	// STSMatch is set when the host is in the MTA-STS policy's mx list.
	STSMatch bool
	// Applied is the policy delivery uses.
	Applied HostPolicy
}

// Verdicts returns the verdict of each distinct MX host among targets.
// Unlike ForTargets it looks up the MTA-STS policy also where DANE takes
// precedence, to show it.
func (e *Engine) Verdicts(ctx context.Context, domain string, targets []route.Target) []Verdict {
	sts := e.stsPolicy(ctx, domain)
	var out []Verdict
	seen := map[string]bool{}
	for _, t := range targets {
		if seen[t.Host] {
			continue
		}
		seen[t.Host] = true
		v := Verdict{Host: t.Host, STS: sts.policy, STSReason: sts.reason}
		v.DANE, v.DANEApplies = e.dane(ctx, domain, t)
		if sts.policy != nil {
			v.STSMatch = sts.policy.MatchMX(t.Host)
		}
		v.Applied = v.DANE
		if !v.DANEApplies {
			v.Applied = sts.forHost(domain, t.Host, v.DANE)
		}
		out = append(out, v)
	}
	return out
}
