package tlspolicy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Report is an aggregate TLS report (RFC 8460 §4.4).
type Report struct {
	// OrganizationName is the reporter (Ferry's hostname).
	OrganizationName string `json:"organization-name"`
	// DateRange is the period the report covers.
	DateRange DateRange `json:"date-range"`
	// ContactInfo is the reporter's contact address.
	ContactInfo string `json:"contact-info"`
	// ReportID is unique per report.
	ReportID string `json:"report-id"`
	// Policies has one entry per policy type evaluated for the domain.
	Policies []ReportPolicy `json:"policies"`
}

// DateRange is the report's period, in UTC (RFC 8460 §4.4 date-range).
type DateRange struct {
	// Start and End are the first and last second of the period.
	Start time.Time `json:"start-datetime"`
	End   time.Time `json:"end-datetime"`
}

// ReportPolicy is one policy's results in a report.
type ReportPolicy struct {
	// Policy describes the policy.
	Policy PolicyDesc `json:"policy"`
	// Summary counts the sessions under it.
	Summary Summary `json:"summary"`
	// FailureDetails break the failures down.
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// PolicyDesc describes the policy evaluated (RFC 8460 §4.4 "policy").
type PolicyDesc struct {
	// Type is "tlsa", "sts" or "no-policy-found".
	Type string `json:"policy-type"`
	// String is the policy: TLSA records, or the MTA-STS policy's lines.
	String []string `json:"policy-string,omitempty"`
	// Domain is the policy domain.
	Domain string `json:"policy-domain"`
	// MXHost are the MTA-STS policy's MX patterns.
	MXHost []string `json:"mx-host,omitempty"`
}

// Summary counts the sessions (RFC 8460 §4.4 "summary").
type Summary struct {
	// Success and Failure count the sessions.
	Success int64 `json:"total-successful-session-count"`
	Failure int64 `json:"total-failure-session-count"`
}

// FailureDetail is one kind of failed session (RFC 8460 §4.4
// "failure-details").
type FailureDetail struct {
	// ResultType is an RFC 8460 §4.3 result type.
	ResultType string `json:"result-type"`
	// ReceivingMXHostname and ReceivingIP name the MX host.
	ReceivingMXHostname string `json:"receiving-mx-hostname,omitempty"`
	ReceivingIP         string `json:"receiving-ip,omitempty"`
	// FailedSessionCount is the number of such sessions.
	FailedSessionCount int64 `json:"failed-session-count"`
}

// buildReports turns counts into one report per policy domain.
func buildReports(m map[[2]string]*counts, org, contact string, start, end time.Time, id func(domain string) string) map[string]*Report {
	out := map[string]*Report{}
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		domain, typ, c := k[0], k[1], m[k]
		r := out[domain]
		if r == nil {
			r = &Report{OrganizationName: org, ContactInfo: contact, ReportID: id(domain),
				DateRange: DateRange{Start: start.UTC().Truncate(time.Second), End: end.UTC().Truncate(time.Second)}}
			out[domain] = r
		}
		p := ReportPolicy{Policy: PolicyDesc{Type: typ, String: c.policy, Domain: domain, MXHost: c.mxHosts}}
		p.Summary.Success = c.success
		for _, fk := range c.sortedKeys() {
			n := c.failures[fk]
			p.Summary.Failure += n
			p.FailureDetails = append(p.FailureDetails, FailureDetail{ResultType: fk.resultType, ReceivingMXHostname: fk.mx, ReceivingIP: fk.ip, FailedSessionCount: n})
		}
		r.Policies = append(r.Policies, p)
	}
	return out
}

// Gzip returns the report as gzip-compressed JSON (RFC 8460 §5.1).
func (r *Report) Gzip() ([]byte, error) {
	js, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("tlspolicy: report JSON: %w", err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(js); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
