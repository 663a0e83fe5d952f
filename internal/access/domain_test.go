package access

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestNormalizeDomain checks the canonical forms and the refusals.
func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error wrapping ErrBadDomain
	}{
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com.", "example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.Example.", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{"例え。テスト", "xn--r8jz45g.xn--zckzah"},
		{"例え．テスト", "xn--r8jz45g.xn--zckzah"},
		{"ＥＸＡＭＰＬＥ.com", "example.com"},
		{"straße.example", "xn--strae-oqa.example"}, // UTS #46 nontransitional: ß is kept
		{"a-b.example", "a-b.example"},
		{"r3--sn-abc.example", ""}, // hyphens in positions 3 and 4 are reserved (RFC 5891 §4.2.3.1)
		{"1.example", "1.example"},
		{"localhost", "localhost"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
		{"", ""},
		{".", ""},
		{"example..com", ""},
		{".example.com", ""},
		{"example.com..", ""},
		{"-example.com", ""},
		{"example-.com", ""},
		{"exa_mple.com", ""},
		{"exa mple.com", ""},
		{"example.com/evil", ""},
		{"user@example.com", ""},
		{"1.2.3.4", ""},
		{"example.123", ""},
		{strings.Repeat("a", 64) + ".example", ""},
		{strings.Repeat(strings.Repeat("a", 60)+".", 5) + "example", ""},
		{"xn--a.example", ""},                                // decodes to U+0080
		{"xn--bcher-kva-.example", ""},                       // trailing hyphen
		{"xn--bcher-kvaa.example", "xn--bcher-kvaa.example"}, // a valid A-label (büücher)
		{"xn--example-.com", ""},                             // decodes to ASCII
		{"xn--Bcher-kva.example", "xn--bcher-kva.example"},
		{"xn--wca.example", ""},                          // U+00DC "Ü": upper case inside an A-label
		{"xn--bcher-2pa.example", ""},                    // "bÜcher"
		{"xn--tda.example", "xn--tda.example"},           // "ü"
		{"\u0308a.example", ""},                          // starts with a combining mark
		{"a\u200Db.example", ""},                         // ZWJ needs CONTEXTJ: refused
		{"İstanbul.example", "xn--istanbul-o0e.example"}, // UTS #46: "i̇stanbul", not "istanbul"
		{"\u212Aelvin.example", "kelvin.example"},        // Kelvin sign maps to k
		{"STRA\u1E9EE.example", "strasse.example"},       // capital sharp s: UTS #46 "ss"
		{"\u01C5emal.example", "xn--demal-uib.example"},  // title-case digraph
		{"ΣΟΦΙΑ.example", "xn--mxaprpq.example"},         // ordinary capitals are lowered (as idna.Lookup)
		{"\u10A0.example", ""},                           // Georgian capital: disallowed by UTS #46
		{"\u04C0.example", ""},                           // Cyrillic palochka
		{"\u2D00.example", "xn--rkj.example"},            // its lower case is fine
		{"☃.example", "xn--n3h.example"},                 // a symbol: allowed by lookup
		{"exa\x00mple.com", ""},                          // NUL
		{"exa\xffmple.com", ""},                          // invalid UTF-8
		{"\u3002example.com", ""},                        // leading ideographic full stop: empty label
	}
	for _, tt := range tests {
		got, err := NormalizeDomain(tt.in)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrBadDomain) {
				t.Errorf("NormalizeDomain(%q) = %q, %v; want an ErrBadDomain error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		// The canonical form is a fixed point.
		if again, err := NormalizeDomain(got); err != nil || again != got {
			t.Errorf("NormalizeDomain(%q) = %q, %v; not a fixed point", got, again, err)
		}
	}
	if _, err := NormalizeDomain("[192.0.2.1]"); !errors.Is(err, ErrAddressLiteral) {
		t.Errorf("NormalizeDomain of a literal: %v, want ErrAddressLiteral", err)
	}
}

// TestParseAddressLiteral checks RFC 5321 §4.1.3 literals.
func TestParseAddressLiteral(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means an error
	}{
		{"[192.0.2.1]", "192.0.2.1"},
		{"[IPv6:2001:db8::1]", "2001:db8::1"},
		{"[ipv6:::1]", "::1"},
		{"[IPv6:::ffff:192.0.2.1]", "::ffff:192.0.2.1"},
		{"[IPv6:fe80::1%eth0]", ""},
		{"[IPv6:192.0.2.1]", ""},
		{"[2001:db8::1]", ""},
		{"[192.0.2.256]", ""},
		{"[192.000.2.1]", ""},
		{"[x400:c=us]", ""},
		{"[]", ""},
		{"[192.0.2.1", ""},
		{"192.0.2.1", ""},
	}
	for _, tt := range tests {
		got, err := ParseAddressLiteral(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseAddressLiteral(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != netip.MustParseAddr(tt.want) {
			t.Errorf("ParseAddressLiteral(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestDomainSet checks exact entries, leading-dot entries and their
// normalization.
func TestDomainSet(t *testing.T) {
	set, err := newDomainSet("accept_domains", []string{"Company.Example.", "bücher.example", ".sub.example"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		domain string
		want   bool
	}{
		{"company.example", true},
		{"xn--bcher-kva.example", true},
		{"a.sub.example", true},
		{"a.b.sub.example", true},
		{"sub.example", false},
		{"xsub.example", false},
		{"mail.company.example", false},
		{"company.example.evil", false},
		{"evilcompany.example", false},
		{"bcher.example", false},
	}
	for _, tt := range tests {
		if got := set.match(tt.domain); got != tt.want {
			t.Errorf("match(%q) = %v, want %v", tt.domain, got, tt.want)
		}
	}
	for _, bad := range [][]string{{"*.example.com"}, {""}, {"[192.0.2.1]"}, {"exa_mple.com"}, {"."}, {".."}} {
		if _, err := newDomainSet("accept_domains", bad); err == nil {
			t.Errorf("newDomainSet(%q): no error", bad)
		}
	}
}
