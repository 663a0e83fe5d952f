package smtp

import (
	"strings"
	"testing"
)

func TestPathString(t *testing.T) {
	tests := []struct {
		p         Path
		str, addr string
		ascii     bool
	}{
		{Path{}, "<>", "", true},
		{Path{"user", "example.com"}, "<user@example.com>", "user@example.com", true},
		{Path{"john doe", "example.com"}, `<"john doe"@example.com>`, `"john doe"@example.com`, true},
		{Path{"a>b", "x"}, `<"a>b"@x>`, `"a>b"@x`, true},
		{Path{"a> SIZE=1", "x"}, `<"a> SIZE=1"@x>`, `"a> SIZE=1"@x`, true},
		{Path{`a"b\c`, "x"}, `<"a\"b\\c"@x>`, `"a\"b\\c"@x`, true},
		{Path{"a.b", "x"}, "<a.b@x>", "a.b@x", true},
		{Path{"a..b", "x"}, `<"a..b"@x>`, `"a..b"@x`, true},
		{Path{".a", "x"}, `<".a"@x>`, `".a"@x`, true},
		{Path{"", "x"}, `<""@x>`, `""@x`, true},
		{Path{"Postmaster", ""}, "<Postmaster>", "Postmaster", true},
		{Path{"a\r\nRSET", "x"}, `<"a??RSET"@x>`, `"a??RSET"@x`, true},
		{Path{"a", "x> NOTIFY=NEVER"}, "<a@x??NOTIFY=NEVER>", "a@x??NOTIFY=NEVER", true},
		{Path{"ü", "bücher.example"}, "<ü@bücher.example>", "ü@bücher.example", false},
		{Path{"user", "[IPv6:2001:db8::1]"}, "<user@[IPv6:2001:db8::1]>", "user@[IPv6:2001:db8::1]", true},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.str {
			t.Errorf("%#v.String() = %q, want %q", tc.p, got, tc.str)
		}
		if got := tc.p.Address(); got != tc.addr {
			t.Errorf("%#v.Address() = %q, want %q", tc.p, got, tc.addr)
		}
		if got := tc.p.IsASCII(); got != tc.ascii {
			t.Errorf("%#v.IsASCII() = %v", tc.p, got)
		}
	}
}

// TestPathNoInjection checks that a local part that looks like parameters
// survives a trip through String and the parser without becoming any.
func TestPathNoInjection(t *testing.T) {
	for _, local := range []string{"a> SIZE=1 BODY=8BITMIME", "x>", "\"", "\\", "a b", "<", "a=b", "a@b> X"} {
		p := Path{LocalPart: local, Domain: "example.com"}
		got, params, err := ParseMailArg("FROM:" + p.String())
		if err != nil {
			t.Errorf("%q: re-parse of %s: %v", local, p, err)
			continue
		}
		if got != p || len(params) != 0 {
			t.Errorf("%q: re-parsed as %#v with params %v", local, got, params)
		}
	}
}

func TestParseAddressAndPaths(t *testing.T) {
	if p, err := ParseAddress("user@example.com"); err != nil || p != (Path{"user", "example.com"}) {
		t.Errorf("ParseAddress: %v, %v", p, err)
	}
	for _, bad := range []string{"", "user", "@a:user@example.com", "user@", "<user@example.com>", "postmaster"} {
		if p, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) = %v, want an error", bad, p)
		}
	}
	if p, err := ParseReversePath("<>"); err != nil || !p.IsNull() {
		t.Errorf("ParseReversePath(<>) = %v, %v", p, err)
	}
	if _, err := ParseForwardPath("<>"); err == nil {
		t.Error("ParseForwardPath(<>) accepted the null path")
	}
	if p, err := ParseForwardPath("<POSTMASTER>"); err != nil || p.LocalPart != "POSTMASTER" {
		t.Errorf("ParseForwardPath(<POSTMASTER>) = %v, %v", p, err)
	}
	// 256 octets with brackets is the limit (RFC 5321 §4.5.3.1.3).
	local := `"` + strings.Repeat("x", 60) + `"`
	label := strings.Repeat("d", 63)
	domain := label + "." + label + "." + label
	path := "<" + local + "@" + domain + ">"
	if len(path) != 256 {
		t.Fatalf("test path is %d octets", len(path))
	}
	if _, err := ParseForwardPath(path); err != nil {
		t.Errorf("256-octet path refused: %v", err)
	}
	long := "<\"x" + path[2:]
	if _, err := ParseForwardPath(long); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("257-octet path: err = %v, want too long", err)
	}
}
