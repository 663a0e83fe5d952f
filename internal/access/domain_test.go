package access

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// TestPunycodeRFC3492 checks the sample strings of RFC 3492 §7.1 and a few
// well-known IDN labels.
func TestPunycodeRFC3492(t *testing.T) {
	tests := []struct{ unicode, puny string }{
		{"bücher", "bcher-kva"},
		{"münchen", "mnchen-3ya"},
		{"例え", "r8jz45g"},
		{"テスト", "zckzah"},
		// (A) Arabic (Egyptian).
		{"\u0644\u064A\u0647\u0645\u0627\u0628\u062A\u0643\u0644\u0645\u0648\u0634\u0639\u0631\u0628\u064A\u061F", "egbpdaj6bu4bxfgehfvwxn"},
		// (B) Chinese (simplified).
		{"\u4ED6\u4EEC\u4E3A\u4EC0\u4E48\u4E0D\u8BF4\u4E2D\u6587", "ihqwcrb4cv8a8dqg056pqjye"},
		// (G) Japanese (kanji and hiragana).
		{"\u306A\u305C\u307F\u3093\u306A\u65E5\u672C\u8A9E\u3092\u8A71\u3057\u3066\u304F\u308C\u306A\u3044\u306E\u304B", "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa"},
		// (L) 3<nen>B<gumi><kinpachi><sensei>: basic code points keep their case.
		{"3\u5E74B\u7D44\u91D1\u516B\u5148\u751F", "3B-ww4c5e180e575a65lsy2b"},
		// (O) <pafii>de<runba>.
		{"\u30D1\u30D5\u30A3\u30FCde\u30EB\u30F3\u30D0", "de-jg4avhby1noc0d"},
		// (S) -> $1.00 <- : all basic.
		{"-> $1.00 <-", "-> $1.00 <--"},
	}
	for _, tt := range tests {
		got, err := punyEncode(tt.unicode)
		if err != nil || got != tt.puny {
			t.Errorf("punyEncode(%q) = %q, %v; want %q", tt.unicode, got, err, tt.puny)
		}
		back, err := punyDecode(tt.puny)
		if err != nil || back != tt.unicode {
			t.Errorf("punyDecode(%q) = %q, %v; want %q", tt.puny, back, err, tt.unicode)
		}
	}
}

// TestPunycodeDecodeErrors checks that malformed Punycode is refused rather
// than decoded to something.
func TestPunycodeDecodeErrors(t *testing.T) {
	for _, s := range []string{
		"b",            // truncated variable-length integer
		"99999999999",  // overflow
		"bcher-kva!",   // not a base-36 digit
		"ü-kva",        // non-ASCII basic code point
		"zzzzzzzzzzzz", // overflow
		"a-9",          // truncated variable-length integer
	} {
		if got, err := punyDecode(s); err == nil {
			t.Errorf("punyDecode(%q) = %q, want an error", s, got)
		}
	}
}

// TestPunycodeRoundTrip encodes and decodes random labels mixing ASCII and
// non-ASCII code points.
func TestPunycodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pools := [][2]rune{{'a', 'z'}, {'0', '9'}, {0xE0, 0x17F}, {0x3040, 0x30FF}, {0x4E00, 0x4FFF}, {0x10000, 0x1F000}}
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		for j := rng.IntN(20) + 1; j > 0; j-- {
			pool := pools[rng.IntN(len(pools))]
			b.WriteRune(pool[0] + rng.Int32N(pool[1]-pool[0]+1))
		}
		in := b.String()
		enc, err := punyEncode(in)
		if err != nil {
			t.Fatalf("punyEncode(%q): %v", in, err)
		}
		dec, err := punyDecode(enc)
		if err != nil || dec != in {
			t.Fatalf("round trip of %q via %q = %q, %v", in, enc, dec, err)
		}
	}
}

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
		{"r3--sn-abc.example", "r3--sn-abc.example"},
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
		{"xn--wca.example", ""},                  // U+00DC "Ü": upper case inside an A-label
		{"xn--bcher-2pa.example", ""},            // "bÜcher"
		{"xn--tda.example", "xn--tda.example"},   // "ü"
		{"\u0308a.example", ""},                  // starts with a combining mark
		{"a\u200Db.example", ""},                 // ZWJ needs CONTEXTJ: refused
		{"İstanbul.example", ""},                 // UTS #46: "i̇stanbul", not "istanbul"
		{"\u212Aelvin.example", ""},              // Kelvin sign
		{"STRA\u1E9EE.example", ""},              // capital sharp s: UTS #46 "ss"
		{"\u01C5emal.example", ""},               // title-case digraph
		{"ΣΟΦΙΑ.example", "xn--mxaprpq.example"}, // ordinary capitals are lowered (as idna.Lookup)
		{"\u10A0.example", ""},                   // Georgian capital: disallowed by UTS #46
		{"\u04C0.example", ""},                   // Cyrillic palochka
		{"\u2D00.example", "xn--rkj.example"},    // its lower case is fine
		{"☃.example", ""},                        // a symbol
		{"exa\x00mple.com", ""},                  // NUL
		{"exa\xffmple.com", ""},                  // invalid UTF-8
		{"\u3002example.com", ""},                // leading ideographic full stop: empty label
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
