package route

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fakeResolver answers from maps; a name in temp fails temporarily, a name
// in neither map does not exist.
type fakeResolver struct {
	mx   map[string][]*net.MX
	ip   map[string][]string
	temp map[string]bool
	// calls records the questions in order.
	calls []string
}

func (f *fakeResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	f.calls = append(f.calls, "MX "+name)
	if f.temp[name] {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	if mx, ok := f.mx[name]; ok {
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.calls = append(f.calls, "A "+host)
	if f.temp[host] {
		return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
	}
	ss, ok := f.ip[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

func mustRoute(t *testing.T, s string) Route {
	t.Helper()
	r, err := ParseRouteFlag(s)
	if err != nil {
		t.Fatalf("ParseRouteFlag(%q): %v", s, err)
	}
	return r
}

func TestLookup(t *testing.T) {
	tab, err := NewTable(Options{},
		mustRoute(t, "company.example=[127.0.0.1]:2526"),
		mustRoute(t, ".company.example=[10.0.0.1]"),
		mustRoute(t, ".deep.company.example=[10.0.0.2]"),
		mustRoute(t, "other.example=mx.other.example:2525,[10.9.9.9]:25"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		domain, want string
	}{
		{"company.example", "company.example=[127.0.0.1]:2526"},
		{"COMPANY.Example.", "company.example=[127.0.0.1]:2526"},
		{"sales.company.example", ".company.example=[10.0.0.1]:25"},
		{"a.b.company.example", ".company.example=[10.0.0.1]:25"},
		{"x.deep.company.example", ".deep.company.example=[10.0.0.2]:25"},
		{"deep.company.example", ".company.example=[10.0.0.1]:25"},
		{"other.example", "other.example=mx.other.example:2525,[10.9.9.9]:25"},
		{"notcompany.example", "direct"},
		{"example", "direct"},
	}
	for _, tt := range tests {
		if got := tab.Lookup(tt.domain).String(); got != tt.want {
			t.Errorf("Lookup(%q) = %q, want %q", tt.domain, got, tt.want)
		}
	}

	withStar, err := NewTable(Options{}, mustRoute(t, "a.example=[10.0.0.1]"), mustRoute(t, "*=[smarthost.example]:587;tls=required"))
	if err != nil {
		t.Fatal(err)
	}
	r := withStar.Lookup("anything.example")
	if r.String() != "*=[smarthost.example]:587" || r.Policy.TLS != TLSRequired {
		t.Errorf("wildcard: got %v policy %+v", r, r.Policy)
	}
	smart, err := NewTable(Options{SmartHost: []NextHop{{Host: "relay.example", Port: 25, NoMX: true}}, DefaultPolicy: Policy{EightBit: Bounce}})
	if err != nil {
		t.Fatal(err)
	}
	if r := smart.Lookup("x.example"); r.String() != "*=[relay.example]:25" || r.Policy.EightBit != Bounce {
		t.Errorf("smart host: got %v %+v", r, r.Policy)
	}
	if _, err := NewTable(Options{SmartHost: []NextHop{{Host: "relay.example", Port: 25}}}, mustRoute(t, "*=[x.example]")); err == nil {
		t.Error("smart host plus * route: want error")
	}
	if _, err := NewTable(Options{}, mustRoute(t, "a.example=[x.example]"), mustRoute(t, "A.example=[y.example]")); err == nil {
		t.Error("duplicate pattern: want error")
	}
	// TLSA records are found by name (RFC 7672 §2.2): an IP next hop has none.
	for _, s := range []string{"a.example=relay.example,[192.0.2.1]:25;tls=dane", "a.example=[2001:db8::1]:587;tls=dane-only"} {
		if _, err := NewTable(Options{}, mustRoute(t, s)); err == nil || !strings.Contains(err.Error(), "is an IP address") {
			t.Errorf("%s: error %v, want one naming the IP address", s, err)
		}
	}
	if _, err := NewTable(Options{}, mustRoute(t, "a.example=[192.0.2.1]:25;tls=required"), mustRoute(t, "b.example=relay.example;tls=dane")); err != nil {
		t.Errorf("an IP hop without dane, a named hop with dane: %v", err)
	}
}

func TestParseRouteFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    Route
		wantErr string
	}{
		{in: "company.example=[127.0.0.1]:2526", want: Route{Pattern: "company.example", Hops: []NextHop{{Host: "127.0.0.1", Port: 2526, NoMX: true}}}},
		{in: "*=smarthost.example", want: Route{Pattern: "*", Hops: []NextHop{{Host: "smarthost.example", Port: 25}}}},
		{in: ".example.org=a.example:26, [b.example]", want: Route{Pattern: ".example.org", Hops: []NextHop{{Host: "a.example", Port: 26}, {Host: "b.example", Port: 25, NoMX: true}}}},
		{in: "v6.example=[2001:db8::1]:2525", want: Route{Pattern: "v6.example", Hops: []NextHop{{Host: "2001:db8::1", Port: 2525, NoMX: true}}}},
		{in: "ip.example=192.0.2.7", want: Route{Pattern: "ip.example", Hops: []NextHop{{Host: "192.0.2.7", Port: 25, NoMX: true}}}},
		{in: "x.example=direct;eightbit=bounce", want: Route{Pattern: "x.example", Policy: Policy{EightBit: Bounce}}},
		{in: "*=[relay.example]:587;tls=required;auth=u:p:w;ehlo=me.example;discard=8BITMIME+chunking;dkim=bounce;conns=3;msgs=50",
			want: Route{Pattern: "*", Hops: []NextHop{{Host: "relay.example", Port: 587, NoMX: true}}, Policy: Policy{
				TLS: TLSRequired, Auth: &Credentials{Username: "u", Password: "p:w"}, EHLOName: "me.example",
				DiscardKeywords: []string{"8BITMIME", "CHUNKING"}, DKIMSigned: Bounce, MaxConnections: 3, MaxMessagesPerConnection: 50}}},
		{in: "company.example", wantErr: "want PATTERN=NEXTHOP"},
		{in: "=[x]", wantErr: "empty pattern"},
		{in: "a.example=[x", wantErr: "missing ']'"},
		{in: "a.example=x:0", wantErr: "is not a number from 1 to 65535"},
		{in: "a.example=x:99999", wantErr: "is not a number from 1 to 65535"},
		{in: "a.example=2001:db8::1", wantErr: "IPv6"},
		{in: "a.example=x;tls=sometimes", wantErr: "not none, may, required, dane or dane-only"},
		{in: "a.example=[relay.example]:587,relay2.example;tls=dane-only", want: Route{Pattern: "a.example",
			Hops: []NextHop{{Host: "relay.example", Port: 587, NoMX: true}, {Host: "relay2.example", Port: 25}}, Policy: Policy{TLS: TLSDANEOnly}}},
		{in: "a.example=relay.example;tls=DANE", want: Route{Pattern: "a.example", Hops: []NextHop{{Host: "relay.example", Port: 25}}, Policy: Policy{TLS: TLSDANE}}},
		{in: "a.example=x;colour=blue", wantErr: "unknown option"},
		{in: "a..example=x", wantErr: "empty label"},
		{in: "a.example=", wantErr: "empty next hop"},
	}
	for _, tt := range tests {
		got, err := ParseRouteFlag(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRouteFlag(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRouteFlag(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRouteFlag(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func targetsString(ts []Target) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, " ")
}

// reverseShuffle is a deterministic "shuffle" that reverses each group, so
// the test can see that equal preferences are permuted and unequal ones
// are not.
func reverseShuffle(n int, swap func(i, j int)) {
	for i := 0; i < n/2; i++ {
		swap(i, n-1-i)
	}
}

func TestResolve(t *testing.T) {
	res := &fakeResolver{
		mx: map[string][]*net.MX{
			"pref.example":    {{Host: "mx20.pref.example.", Pref: 20}, {Host: "mx10.pref.example.", Pref: 10}},
			"equal.example":   {{Host: "b.equal.example.", Pref: 10}, {Host: "a.equal.example.", Pref: 10}, {Host: "c.equal.example.", Pref: 5}},
			"null.example":    {{Host: ".", Pref: 0}},
			"mixnull.example": {{Host: ".", Pref: 0}, {Host: "mx.mixnull.example.", Pref: 10}},
			"deadmx.example":  {{Host: "gone.example.", Pref: 10}},
			"relay.example":   {{Host: "mx.relay.example.", Pref: 10}},
		},
		ip: map[string][]string{
			"mx10.pref.example":  {"192.0.2.10"},
			"mx20.pref.example":  {"192.0.2.20", "2001:db8::20"},
			"a.equal.example":    {"192.0.2.1"},
			"b.equal.example":    {"192.0.2.2"},
			"c.equal.example":    {"192.0.2.3"},
			"nomx.example":       {"192.0.2.99"},
			"mx.mixnull.example": {"192.0.2.50"},
			"relay.example":      {"192.0.2.77"},
			"mx.relay.example":   {"192.0.2.78"},
			"backup.example":     {"192.0.2.88"},
		},
		temp: map[string]bool{"tempfail.example": true},
	}
	tab, err := NewTable(Options{Resolver: res, Shuffle: reverseShuffle},
		mustRoute(t, "bracket.example=[relay.example]:2525"),
		mustRoute(t, "mx.example=relay.example:2526"),
		mustRoute(t, "list.example=[nonexistent.example],[backup.example]"),
		mustRoute(t, "broken.example=[nonexistent.example]"),
		mustRoute(t, "literal.example=[192.0.2.200]:2500"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		domain    string
		want      string
		wantReply string
		wantCalls []string
	}{
		{domain: "pref.example", want: "mx10.pref.example[192.0.2.10]:25 mx20.pref.example[192.0.2.20]:25 mx20.pref.example[2001:db8::20]:25"},
		{domain: "equal.example", want: "c.equal.example[192.0.2.3]:25 a.equal.example[192.0.2.1]:25 b.equal.example[192.0.2.2]:25"},
		{domain: "nomx.example", want: "nomx.example[192.0.2.99]:25", wantCalls: []string{"MX nomx.example", "A nomx.example"}},
		{domain: "null.example", wantReply: "556 5.1.10"},
		{domain: "mixnull.example", want: "mx.mixnull.example[192.0.2.50]:25"},
		{domain: "nothing.example", wantReply: "550 5.4.4"},
		{domain: "deadmx.example", wantReply: "550 5.4.4"},
		{domain: "tempfail.example", wantReply: "451 4.4.3"},
		{domain: "[192.0.2.9]", want: "[192.0.2.9]:25", wantCalls: []string{}},
		{domain: "bracket.example", want: "relay.example[192.0.2.77]:2525", wantCalls: []string{"A relay.example"}},
		{domain: "mx.example", want: "mx.relay.example[192.0.2.78]:2526", wantCalls: []string{"MX relay.example", "A mx.relay.example"}},
		{domain: "list.example", want: "backup.example[192.0.2.88]:25"},
		{domain: "broken.example", wantReply: "451 4.4.4"},
		{domain: "literal.example", want: "[192.0.2.200]:2500", wantCalls: []string{}},
	}
	for _, tt := range tests {
		res.calls = res.calls[:0]
		r := tab.Lookup(tt.domain)
		got, err := tab.Resolve(context.Background(), r, tt.domain)
		if tt.wantReply != "" {
			var re *Error
			if !errors.As(err, &re) || !strings.HasPrefix(re.Reply.String(), tt.wantReply) {
				t.Errorf("Resolve(%q) = %v, %v; want reply %s", tt.domain, targetsString(got), err, tt.wantReply)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%q): %v", tt.domain, err)
			continue
		}
		if s := targetsString(got); s != tt.want {
			t.Errorf("Resolve(%q) = %q, want %q", tt.domain, s, tt.want)
		}
		if tt.wantCalls != nil && !slices.Equal(res.calls, tt.wantCalls) {
			t.Errorf("Resolve(%q) asked %q, want %q", tt.domain, res.calls, tt.wantCalls)
		}
	}
}

// TestResolveShuffleDefault checks that with the default shuffle, equal
// preferences come out in both orders and a lower preference always first.
func TestResolveShuffleDefault(t *testing.T) {
	res := &fakeResolver{
		mx: map[string][]*net.MX{"eq.example": {{Host: "a.example", Pref: 10}, {Host: "b.example", Pref: 10}, {Host: "first.example", Pref: 1}}},
		ip: map[string][]string{"a.example": {"192.0.2.1"}, "b.example": {"192.0.2.2"}, "first.example": {"192.0.2.3"}},
	}
	tab, err := NewTable(Options{Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		ts, err := tab.Resolve(context.Background(), tab.Lookup("eq.example"), "eq.example")
		if err != nil {
			t.Fatal(err)
		}
		if ts[0].Host != "first.example" {
			t.Fatalf("lowest preference not first: %s", targetsString(ts))
		}
		seen[ts[1].Host] = true
	}
	if !seen["a.example"] || !seen["b.example"] {
		t.Errorf("equal preferences never shuffled in 200 tries: %v", seen)
	}
}

// TestParseNextHops checks the next-hop spec syntax shared by routes, the
// smart host and the --route flag.
// TestTargetString: a relay is "host[ip]:port", with the address once when
// the host is the address ("[127.0.0.1][127.0.0.1]:25" was the old text
// for an address literal).
func TestTargetString(t *testing.T) {
	for _, tc := range []struct {
		host, ip string
		want     string
	}{
		{"mx.example.com", "192.0.2.1", "mx.example.com[192.0.2.1]:25"},
		{"[127.0.0.1]", "127.0.0.1", "[127.0.0.1]:25"},
		{"127.0.0.1", "127.0.0.1", "[127.0.0.1]:25"},
		{"[IPv6:2001:db8::1]", "2001:db8::1", "[2001:db8::1]:25"},
	} {
		tg := Target{Host: tc.host, IP: netip.MustParseAddr(tc.ip), Port: 25}
		if got := tg.String(); got != tc.want {
			t.Errorf("Target{%s, %s}.String() = %q, want %q", tc.host, tc.ip, got, tc.want)
		}
	}
}

func TestParseNextHops(t *testing.T) {
	cases := []struct {
		in   string
		want []NextHop
		err  string
	}{
		{"mail.example.com", []NextHop{{"mail.example.com", 25, false}}, ""},
		{"Mail.Example.com:587", []NextHop{{"mail.example.com", 587, false}}, ""},
		{"[mail.example.com]", []NextHop{{"mail.example.com", 25, true}}, ""},
		{"[mail.example.com]:2526", []NextHop{{"mail.example.com", 2526, true}}, ""},
		{"[127.0.0.1]:2526", []NextHop{{"127.0.0.1", 2526, true}}, ""},
		{"127.0.0.1:2526", []NextHop{{"127.0.0.1", 2526, true}}, ""},
		{"[2001:db8::1]:25", []NextHop{{"2001:db8::1", 25, true}}, ""},
		{"[ipv6:2001:db8::1]", []NextHop{{"2001:db8::1", 25, true}}, ""},
		{"a.example, [b.example]:26 ,c.example:27", []NextHop{{"a.example", 25, false}, {"b.example", 26, true}, {"c.example", 27, false}}, ""},
		{"", nil, "empty next hop"},
		{"a.example,", nil, `empty next hop`},
		{"[a.example", nil, `next hop "[a.example": missing ']'`},
		{"[a.example]x", nil, `next hop "[a.example]x": unexpected "x" after ']'`},
		{"[a.example]:", nil, `next hop "[a.example]:": empty port`},
		{"a.example:", nil, `next hop "a.example:": empty port`},
		{"a.example:0", nil, `next hop "a.example:0": port "0" is not a number from 1 to 65535`},
		{"a.example:smtp", nil, `next hop "a.example:smtp": port "smtp" is not a number from 1 to 65535`},
		{"2001:db8::1", nil, `write an IPv6 address in brackets`},
		{"[fe80::1%eth0]", nil, `next hop "[fe80::1%eth0]": address zones are not supported`},
		{"a..example", nil, `next hop "a..example"`},
		{"bücher.example", []NextHop{{"xn--bcher-kva.example", 25, false}}, ""},
	}
	for _, tc := range cases {
		got, err := ParseNextHops(tc.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if !strings.Contains(gotErr, tc.err) || (tc.err == "") != (gotErr == "") || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseNextHop(%q) = %v, %q; want %v, %q", tc.in, got, gotErr, tc.want, tc.err)
		}
		for i, h := range got {
			back, err := ParseNextHops(h.String())
			if err != nil || len(back) != 1 || back[0] != got[i] {
				t.Errorf("ParseNextHop(%q.String()) = %v, %v", h, back, err)
			}
		}
	}
}
