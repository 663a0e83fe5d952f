package smtp

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line, verb, arg string
		ok              bool
	}{
		{"EHLO client.example", "EHLO", "client.example", true},
		{"ehlo client.example", "EHLO", "client.example", true},
		{"MaIl FROM:<a@b>", "MAIL", "FROM:<a@b>", true},
		{"QUIT", "QUIT", "", true},
		{"NOOP ", "NOOP", "", true},
		{"MAIL  FROM:<a@b>", "MAIL", " FROM:<a@b>", true},
		{"X-FOO bar", "", "", false}, // '-' is not in a verb
		{"", "", "", false},
		{" MAIL FROM:<>", "", "", false},
		{"MAIL FROM:<>\rRCPT TO:<x@y>", "", "", false},
		{"DATA\n", "", "", false},
		{"NO\x00OP", "", "", false},
		{"M\xc3\xa9IL", "", "", false},
		{strings.Repeat("A", 33), "", "", false},
	}
	for _, tc := range tests {
		c, err := ParseCommand(tc.line)
		if (err == nil) != tc.ok {
			t.Errorf("ParseCommand(%q) error = %v, want ok %v", tc.line, err, tc.ok)
			continue
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Msg == "" {
				t.Errorf("ParseCommand(%q) error %v is not a *SyntaxError with a message", tc.line, err)
			}
			continue
		}
		if c.Verb != tc.verb || c.Arg != tc.arg {
			t.Errorf("ParseCommand(%q) = %+v, want %q %q", tc.line, c, tc.verb, tc.arg)
		}
	}
}

func TestParseMailArg(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	tests := []struct {
		arg    string
		local  string
		domain string
		params string // Params.String()
		err    string // substring of the error; "" for success
	}{
		{"FROM:<user@example.com>", "user", "example.com", "", ""},
		{"from:<user@example.com>", "user", "example.com", "", ""},
		{"FROM:<>", "", "", "", ""},
		{"FROM:<> SIZE=100", "", "", " SIZE=100", ""},
		{"FROM: <user@example.com>", "user", "example.com", "", ""},
		{"FROM:  <user@example.com>", "user", "example.com", "", ""},
		{"FROM:<user@example.com>  ", "user", "example.com", "", ""},
		{"FROM:<a@b> SIZE=1 BODY=8BITMIME", "a", "b", " SIZE=1 BODY=8BITMIME", ""},
		{"FROM:<a@b> size=1  body=8bitmime ", "a", "b", " SIZE=1 BODY=8bitmime", ""},
		{"FROM:<a@b> SMTPUTF8 REQUIRETLS", "a", "b", " SMTPUTF8 REQUIRETLS", ""},
		{"FROM:<a@b> ENVID=QQ+2Bx RET=HDRS", "a", "b", " ENVID=QQ+2Bx RET=HDRS", ""},
		{`FROM:<"john doe"@example.com>`, "john doe", "example.com", "", ""},
		{`FROM:<"a>b"@x>`, "a>b", "x", "", ""},
		{`FROM:<"a> SIZE=1"@x> BODY=7BIT`, "a> SIZE=1", "x", " BODY=7BIT", ""},
		{`FROM:<"a\"b\\c"@x>`, `a"b\c`, "x", "", ""},
		{`FROM:<"\a"@x>`, "a", "x", "", ""},
		{`FROM:<""@x>`, "", "x", "", ""},
		{"FROM:<@relay.example,@r2.example:user@example.com>", "user", "example.com", "", ""},
		{"FROM:<user@[192.0.2.1]>", "user", "[192.0.2.1]", "", ""},
		{"FROM:<user@[IPv6:2001:db8::1]>", "user", "[IPv6:2001:db8::1]", "", ""},
		{"FROM:<user@[ipv6:::ffff:192.0.2.1]>", "user", "[ipv6:::ffff:192.0.2.1]", "", ""},
		{"FROM:<user@[x-tag:abc]>", "user", "[x-tag:abc]", "", ""},
		{"FROM:<first.last+tag@sub.example.com>", "first.last+tag", "sub.example.com", "", ""},
		{"FROM:<ü@bücher.example>", "ü", "bücher.example", "", ""},
		{"FROM:<" + long + ">", strings.Repeat("a", 64), long[65:], "", ""},

		{"FROM:<" + long + "d>", "", "", "", "too long"},
		{"FROM:user@example.com", "", "", "", "enclosed"},
		{"FROM:<user@example.com", "", "", "", "enclosed"},
		{"FROM:<\"user@example.com>", "", "", "", "enclosed"},
		{"TO:<user@example.com>", "", "", "", "FROM:"},
		{"FROM<user@example.com>", "", "", "", "FROM:"},
		{"", "", "", "", "FROM:"},
		{"FROM:<user@example.com>SIZE=1", "", "", "", "space"},
		{"FROM:<Postmaster>", "", "", "", "local-part@domain"},
		{"FROM:<user>", "", "", "", "local-part@domain"},
		{"FROM:<user@>", "", "", "", "domain"},
		{"FROM:<@example.com>", "", "", "", "source route"},
		{"FROM:<a..b@example.com>", "", "", "", "local part"},
		{"FROM:<.a@example.com>", "", "", "", "local part"},
		{"FROM:<a b@example.com>", "", "", "", "local part"},
		{"FROM:<a@exa mple.com>", "", "", "", "domain"},
		{"FROM:<a@-example.com>", "", "", "", "domain"},
		{"FROM:<a@example.com.>", "", "", "", "domain"},
		{"FROM:<a@example..com>", "", "", "", "domain"},
		{"FROM:<a@[300.1.1.1]>", "", "", "", "literal"},
		{"FROM:<a@[IPv6:1.2.3.4]>", "", "", "", "literal"},
		{"FROM:<a@[IPv6:fe80::1%eth0]>", "", "", "", "literal"},
		{"FROM:<a@[]>", "", "", "", "literal"},
		{`FROM:<"a\` + "\x01" + `"@x>`, "", "", "", "quoted pair"},
		{"FROM:<\"a\tb\"@x>", "", "", "", "quoted"},
		{"FROM:<a@b> SIZE=1 SIZE=2", "", "", "", "duplicate parameter SIZE"},
		{"FROM:<a@b> SIZE=1 size=2", "", "", "", "duplicate"},
		{"FROM:<a@b> SIZE=", "", "", "", "bad value"},
		{"FROM:<a@b> SIZE=1=2", "", "", "", "bad value"},
		{"FROM:<a@b> -SIZE=1", "", "", "", "keyword"},
		{"FROM:<a@b> SI_ZE=1", "", "", "", "keyword"},
		{"FROM:<a@b> SIZE=\x7f", "", "", "", "bad value"},
		{"FROM:<a@\xff>", "", "", "", "UTF-8"},
		{"FROM:<@a,b:user@example.com>", "", "", "", "source route"},
		{"FROM:<@a:>", "", "", "", "local part"},
	}
	for _, tc := range tests {
		p, ps, err := ParseMailArg(tc.arg)
		if tc.err != "" {
			var se *SyntaxError
			if err == nil || !errors.As(err, &se) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMailArg(%q) = %+v, %v, %v; want *SyntaxError containing %q", tc.arg, p, ps, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMailArg(%q): %v", tc.arg, err)
			continue
		}
		if p.LocalPart != tc.local || p.Domain != tc.domain || ps.String() != tc.params {
			t.Errorf("ParseMailArg(%q) = %q @ %q params %q; want %q @ %q params %q",
				tc.arg, p.LocalPart, p.Domain, ps.String(), tc.local, tc.domain, tc.params)
		}
	}
}

func TestParseRcptArg(t *testing.T) {
	tests := []struct {
		arg, local, domain string
		ok                 bool
	}{
		{"TO:<user@example.com>", "user", "example.com", true},
		{"to:<user@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user@example.com", "user", "example.com", true},
		{"TO:<Postmaster>", "Postmaster", "", true},
		{"TO:<postmaster>", "postmaster", "", true},
		{"TO:<Postmaster@example.com>", "Postmaster", "example.com", true},
		{"TO:<@hop.example:user@example.com>", "user", "example.com", true},
		{"TO:<>", "", "", false},
		{"TO:<abuse>", "", "", false},
		{"FROM:<user@example.com>", "", "", false},
		{"TO:<user@example.com> NOTIFY=NEVER NOTIFY=NEVER", "", "", false},
	}
	for _, tc := range tests {
		p, _, err := ParseRcptArg(tc.arg)
		if (err == nil) != tc.ok {
			t.Errorf("ParseRcptArg(%q): error %v, want ok %v", tc.arg, err, tc.ok)
			continue
		}
		if tc.ok && (p.LocalPart != tc.local || p.Domain != tc.domain) {
			t.Errorf("ParseRcptArg(%q) = %+v", tc.arg, p)
		}
	}
}

func TestParamsGet(t *testing.T) {
	_, ps, err := ParseMailArg("FROM:<a@b> SIZE=42 SMTPUTF8 body=8BITMIME")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := ps.Get("size"); !ok || v != "42" {
		t.Errorf("Get(size) = %q, %v", v, ok)
	}
	if v, ok := ps.Get("SMTPUTF8"); !ok || v != "" {
		t.Errorf("Get(SMTPUTF8) = %q, %v", v, ok)
	}
	if v, ok := ps.Get("BODY"); !ok || v != "8BITMIME" {
		t.Errorf("Get(BODY) = %q, %v", v, ok)
	}
	if _, ok := ps.Get("RET"); ok {
		t.Error("Get(RET) found a parameter that was not sent")
	}
}
