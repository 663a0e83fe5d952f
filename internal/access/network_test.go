package access

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestParseNetwork checks the config and flag form of relay networks.
func TestParseNetwork(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means an error wrapping ErrBadNetwork
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{" 192.0.2.0/24 ", "192.0.2.0/24"},
		{"192.0.2.7", "192.0.2.7/32"},
		{"::1", "::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"2001:DB8::/32", "2001:db8::/32"},
		{"[2001:db8::]/32", "2001:db8::/32"},
		{"[::1]", "::1/128"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"10.1.2.3/8", ""}, // host bits set
		{"2001:db8::1/32", ""},
		{"fe80::1%eth0", ""},
		{"fe80::%eth0/64", ""},
		{"10.0.0.0/33", ""},
		{"10.0.0/8", ""},
		{"example.com", ""},
		{"", ""},
		{"[2001:db8::/32", ""},
	}
	for _, tt := range tests {
		got, err := ParseNetwork(tt.in)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrBadNetwork) {
				t.Errorf("ParseNetwork(%q) = %v, %v; want an ErrBadNetwork error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != netip.MustParsePrefix(tt.want) {
			t.Errorf("ParseNetwork(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	_, err := ParseNetwork("10.1.2.3/8")
	if err == nil || !strings.Contains(err.Error(), "10.0.0.0/8") {
		t.Errorf("host-bits error %v does not suggest 10.0.0.0/8", err)
	}
}

// TestRelayNetworkMatch checks client addresses against relay networks,
// including mapped addresses, zones and the zero address.
func TestRelayNetworkMatch(t *testing.T) {
	p, err := New(Config{RelayNetworks: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/25"),
		netip.MustParsePrefix("2001:db8:1::/48"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("::ffff:198.51.100.0/120"), // mapped form of 198.51.100.0/24
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.127", true},
		{"192.0.2.128", false},
		{"::ffff:192.0.2.1", true},
		{"2001:db8:1:ffff::1", true},
		{"2001:db8:2::1", false},
		{"fe80::1%eth0", true},
		{"198.51.100.9", true},
		{"::ffff:198.51.100.9", true},
		{"127.0.0.1", false}, // configured networks replace the loopback default
		{"::1", false},
	}
	for _, tt := range tests {
		_, got := p.relayReason(Client{IP: netip.MustParseAddr(tt.ip)})
		if got != tt.want {
			t.Errorf("relay for %s = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if _, got := p.relayReason(Client{}); got {
		t.Error("the zero address may relay")
	}
}

// TestNewValidation checks that New refuses bad configurations with an
// error naming the field.
func TestNewValidation(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"invalid prefix", Config{RelayNetworks: []netip.Prefix{{}}}, "relay_networks[0]"},
		{"bad accept domain", Config{AcceptDomains: []string{"ok.example", "bad_domain"}}, "accept_domains[1]"},
		{"literal accept domain", Config{AcceptDomains: []string{"[192.0.2.1]"}}, "accept_domains[0]"},
		{"wildcard accept domain", Config{AcceptDomains: []string{"*.example.com"}}, ".example.com"},
		{"rule without clients", Config{SenderRules: []SenderRule{{Domains: []string{"a.example"}}}}, "sender_rules[0]"},
		{"rule without domains", Config{SenderRules: []SenderRule{{Users: []string{"bob"}}}}, "sender_rules[0]"},
		{"rule with bad domain", Config{SenderRules: []SenderRule{{Users: []string{"bob"}, Domains: []string{"a..example"}}}}, "sender_rules[0].domains[0]"},
		{"rule with empty user", Config{SenderRules: []SenderRule{{Users: []string{""}, Domains: []string{"a.example"}}}}, "sender_rules[0].users[0]"},
		{"rate without interval", Config{Rate: RateConfig{PerIP: RateLimit{Messages: 5}}}, "per_ip"},
		{"negative rate", Config{Rate: RateConfig{PerUser: RateLimit{Messages: -1, Interval: 1}}}, ""},
		{"rate too fine", Config{Rate: RateConfig{PerUser: RateLimit{Messages: 10, Interval: 5}}}, "per_user"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil {
			t.Errorf("%s: New succeeded", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: error %q does not name %q", tt.name, err, tt.field)
		}
	}
}

// TestNewErrorPrefixOnce: a bad entry is reported with the field it is in
// and the package prefix once ("access: accept_domains[0] …: access: bad
// domain" was the old text).
func TestNewErrorPrefixOnce(t *testing.T) {
	for _, cfg := range []Config{
		{AcceptDomains: []string{"*.example.com"}},
		{AcceptDomains: []string{"bad domain!"}},
		{SenderRules: []SenderRule{{Users: []string{"u"}, Domains: []string{"-x-.example"}}}},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Fatalf("New(%+v) accepted a bad entry", cfg)
		}
		if n := strings.Count(err.Error(), "access:"); n != 1 {
			t.Errorf("error %q carries \"access:\" %d times, want once", err, n)
		}
	}
}
