package smtp

import (
	"strings"
)

// AuthResults are the message authentication results Ferry found when it
// received a message: one per DKIM-Signature field, and the ARC chain's
// validation status. They are stored with the message (so that a later
// delivery can report them in an ARC set) and shown by "ferry queue show".
type AuthResults struct {
	// DKIM has one result per DKIM-Signature field, top first.
	DKIM []DKIMResult
	// ARC is the chain validation status (RFC 8617 §4.4): "none", "pass"
	// or "fail"; empty when it was not checked.
	ARC string
	// ARCInstance is the highest ARC set instance the message carried; 0
	// when none.
	ARCInstance int
}

// DKIMResult is the verification of one DKIM signature (RFC 6376 §6).
type DKIMResult struct {
	// Domain and Selector are the signature's d= and s=.
	Domain, Selector string
	// Algorithm is the a= value, e.g. "rsa-sha256".
	Algorithm string
	// Result is an RFC 8601 §2.7.1 result: "pass", "fail", "neutral",
	// "temperror" or "permerror".
	Result string
	// Reason says why a signature did not pass; empty on pass.
	Reason string
}

// String formats the results as RFC 8601 resinfo clauses separated by
// "; ", e.g. "dkim=pass header.d=example.org header.s=s1; arc=none", with
// the reason of each failure as a comment: for the log and "ferry queue
// show".
func (a *AuthResults) String() string { return a.format(true) }

// Header formats the results like String but without the reasons, which
// may name internal hosts (the resolver's address in a DNS error): what
// goes into header fields other hops read, such as an
// ARC-Authentication-Results.
func (a *AuthResults) Header() string { return a.format(false) }

func (a *AuthResults) format(reasons bool) string {
	if a == nil {
		return ""
	}
	var parts []string
	if len(a.DKIM) == 0 {
		parts = append(parts, "dkim=none")
	}
	for _, r := range a.DKIM {
		s := "dkim=" + r.Result
		if reasons && r.Reason != "" {
			s += " (" + strings.NewReplacer("(", "[", ")", "]", ";", ",").Replace(r.Reason) + ")"
		}
		if r.Domain != "" {
			s += " header.d=" + r.Domain
		}
		if r.Selector != "" {
			s += " header.s=" + r.Selector
		}
		if r.Algorithm != "" {
			s += " header.a=" + r.Algorithm
		}
		parts = append(parts, s)
	}
	if a.ARC != "" {
		parts = append(parts, "arc="+a.ARC)
	}
	return strings.Join(parts, "; ")
}

// Passed reports whether the signature with domain d and selector s
// verified at receipt.
func (a *AuthResults) Passed(d, s string) bool {
	if a == nil {
		return false
	}
	for _, r := range a.DKIM {
		if strings.EqualFold(r.Domain, d) && r.Selector == s && r.Result == "pass" {
			return true
		}
	}
	return false
}
