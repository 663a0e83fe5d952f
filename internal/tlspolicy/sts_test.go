package tlspolicy

import (
	"strings"
	"testing"
	"time"
)

func TestParseSTSPolicy(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string // "" for an error, else mode and mx joined
		age  time.Duration
	}{
		{"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n", "enforce mail.example.com *.example.net", 604800 * time.Second},
		{"version: STSv1\nmode: testing\nmx: MX.Example.COM.\nmax_age: 86400\nfuture: x\n", "testing mx.example.com", 86400 * time.Second},
		{"version: STSv1\nmode: none\nmax_age: 1\n", "none", time.Second},
		{"version: STSv1\nmode: enforce\nmx: a\nmax_age: 99999999999\n", "", 0},
		{"version: STSv1\nmode: enforce\nmx: a\nmax_age: 40000000\n", "enforce a", maxMaxAge},
		{"mode: enforce\nversion: STSv1\nmx: a\nmax_age: 1\n", "", 0},
		{"version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n", "", 0},
		{"version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n", "", 0},
		{"version: STSv1\nmode: enforce\nmax_age: 1\n", "", 0},
		{"version: STSv1\nmode: enforce\nmx: a\n", "", 0},
		{"version: STSv1\nmode enforce\n", "", 0},
	} {
		p, err := ParseSTSPolicy(tc.body)
		got := ""
		if err == nil {
			got = strings.TrimSpace(p.Mode + " " + strings.Join(p.MX, " "))
		}
		if got != tc.want || (err == nil && p.MaxAge != tc.age) {
			t.Errorf("%q: %q max_age %v (err %v), want %q %v", tc.body, got, p.MaxAge, err, tc.want, tc.age)
		}
	}
}

func TestMatchMX(t *testing.T) {
	p := STSPolicy{MX: []string{"mail.example.com", "*.example.net"}}
	for host, want := range map[string]bool{
		"mail.example.com":    true,
		"MAIL.example.com.":   true,
		"mx1.example.net":     true,
		"a.mx1.example.net":   false, // "*." is exactly one label (RFC 8461 §4.1)
		"example.net":         false,
		"mail.example.com.au": false,
		"other.example.com":   false,
	} {
		if got := p.MatchMX(host); got != want {
			t.Errorf("MatchMX(%q) = %v, want %v", host, got, want)
		}
	}
}
