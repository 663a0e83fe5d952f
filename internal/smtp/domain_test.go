package smtp

import "testing"

// domainForms are the spellings of one name that must give one key: the
// U-label, upper case, the A-label, the ideographic full stop (U+3002) and
// its half-width and full-width relatives as dots, full-width letters, and
// each with a trailing dot.
var domainForms = []string{
	"bücher.example",
	"BÜCHER.EXAMPLE",
	"xn--bcher-kva.example",
	"XN--BCHER-KVA.Example",
	"bücher。example",
	"bücher｡example",
	"bücher．example",
	"ｂüｃｈｅｒ.ｅｘａｍｐｌｅ",
	"bücher.example.",
	"xn--bcher-kva.example.",
	"bücher。example。",
	"ＢÜＣＨＥＲ．ＥＸＡＭＰＬＥ．",
}

func TestDomainKeyForms(t *testing.T) {
	for _, f := range domainForms {
		if got := DomainKey(f); got != "xn--bcher-kva.example" {
			t.Errorf("DomainKey(%q) = %q, want xn--bcher-kva.example", f, got)
		}
		if got, err := NormalizeDomain(f); err != nil || got != "xn--bcher-kva.example" {
			t.Errorf("NormalizeDomain(%q) = %q, %v", f, got, err)
		}
	}
	for in, want := range map[string]string{
		"Example.COM.":         "example.com",
		"[192.0.2.1]":          "[192.0.2.1]",
		"[IPv6:2001:DB8::1]":   "[ipv6:2001:db8::1]",
		"under_score.example.": "under_score.example", // not a valid name: lower-cased
	} {
		if got := DomainKey(in); got != want {
			t.Errorf("DomainKey(%q) = %q, want %q", in, got, want)
		}
	}
}
