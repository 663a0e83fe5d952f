package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// TLSPolicy is the outbound TLS policy part of [delivery]: the DNS the
// policy needs, DANE, MTA-STS and TLS reporting (docs/tls-policy.md).
type TLSPolicy struct {
	// Resolvers are the recursive DNS resolvers ("host" or "host:port");
	// empty means the nameservers of /etc/resolv.conf.
	Resolvers []string
	// DNSSECResolver is the validating resolver whose AD bit Ferry trusts
	// ("host" or "host:port"); empty: DANE is off.
	DNSSECResolver string
	// MTASTS switches MTA-STS (RFC 8461) on.
	MTASTS bool
	// MTASTSCAFile is a PEM file of CA certificates that MTA-STS policy
	// servers are verified against instead of the system roots; a test
	// knob.
	MTASTSCAFile string
	// MTASTSPort is the HTTPS port of policy servers; 443 except in tests.
	MTASTSPort int
	// MXPort is the port direct delivery dials at MX hosts; 25 except in
	// tests.
	MXPort int
	// TLSReports switches TLS-RPT (RFC 8460) reports on.
	TLSReports bool
	// TLSReportPeriod is the period one report covers: a UTC day, except
	// in tests.
	TLSReportPeriod time.Duration
}

// DefaultTLSPolicy returns the built-in defaults.
func DefaultTLSPolicy() TLSPolicy {
	return TLSPolicy{MTASTS: true, MTASTSPort: 443, MXPort: 25, TLSReports: true, TLSReportPeriod: 24 * time.Hour}
}

const (
	wantResolver  = `a resolver address like "127.0.0.1", "127.0.0.1:5353" or "[::1]:53"`
	wantResolvers = `a list of resolver addresses like "127.0.0.1", "127.0.0.1:5353" or "[::1]:53"`
)

func checkResolver(s string) (string, error) {
	host := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	if net.ParseIP(strings.Trim(host, "[]")) == nil {
		return "", fmt.Errorf("%q is not an IP address (a resolver is named by its address)", s)
	}
	return s, nil
}

// tlsPolicyFields are the [delivery] keys of the TLS policy.
func (d *decoder) tlsPolicyFields(p *TLSPolicy) map[string]field {
	return map[string]field{
		"resolvers":         d.strList(&p.Resolvers, wantResolvers, false, checkResolver),
		"dnssec_resolver":   d.strCheck(&p.DNSSECResolver, wantResolver, true, checkResolver),
		"mta_sts":           d.boolean(&p.MTASTS),
		"mta_sts_ca_file":   d.str(&p.MTASTSCAFile, wantPath),
		"mta_sts_port":      d.integer(&p.MTASTSPort, 1, 65535, "a port number from 1 to 65535"),
		"mx_port":           d.integer(&p.MXPort, 1, 65535, "a port number from 1 to 65535"),
		"tls_reports":       d.boolean(&p.TLSReports),
		"tls_report_period": d.duration(&p.TLSReportPeriod, false),
	}
}

// writeTLSPolicy writes the [delivery] keys of the TLS policy.
func (t *tomlWriter) writeTLSPolicy(p TLSPolicy) {
	t.list("resolvers", p.Resolvers)
	t.str("dnssec_resolver", p.DNSSECResolver)
	t.bool("mta_sts", p.MTASTS)
	t.str("mta_sts_ca_file", p.MTASTSCAFile)
	t.int("mta_sts_port", p.MTASTSPort)
	t.int("mx_port", p.MXPort)
	t.bool("tls_reports", p.TLSReports)
	t.dur("tls_report_period", p.TLSReportPeriod)
}
