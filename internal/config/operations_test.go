package config

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestDSNAndTranscripts(t *testing.T) {
	doc := `[dsn]
postmaster = "Postmaster@Relay.Example"
max_return_size = "1MiB"

[transcripts]
dir = "/var/log/ferry/transcripts"
clients = ["192.0.2.0/24", "2001:db8::7"]
next_hops = ["MX.Example.COM", ".partner.example", "[192.0.2.25]", "2001:db8::25"]
full_content = true
`
	c, err := Parse("ops.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.DSN != (DSN{Postmaster: "Postmaster@Relay.Example", MaxReturnSize: 1 << 20}) {
		t.Errorf("DSN %+v", c.DSN)
	}
	want := Transcripts{
		Dir:         "/var/log/ferry/transcripts",
		Clients:     []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::7/128")},
		NextHops:    []string{"mx.example.com", ".partner.example", "192.0.2.25", "2001:db8::25"},
		FullContent: true,
	}
	if !reflect.DeepEqual(c.Transcripts, want) {
		t.Errorf("Transcripts %+v, want %+v", c.Transcripts, want)
	}
	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Parse("back.toml", buf.Bytes())
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Errorf("round trip: %v\n%+v\nwant %+v", err, back, c)
	}
	if d := Default().DSN; d.MaxReturnSize != 100<<10 || d.Postmaster != "" {
		t.Errorf("default DSN %+v, want 100KiB and no postmaster", d)
	}
}

func TestDSNAndTranscriptErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{"[dsn]\npostmaster = \"nobody\"\n", `f.toml:2: dsn.postmaster: want an address like "postmaster@example.com", or "" (none), got "nobody"`},
		{"[dsn]\nmax_return_size = \"lots\"\n", `f.toml:2: dsn.max_return_size: want a size like "50MB" or a number of octets, got "lots"`},
		{"[transcripts]\nclients = [\"10.1.2.3/8\"]\n", `f.toml:2: transcripts.clients: want a list of networks`},
		{"[transcripts]\nnext_hops = [\"bad host\"]\n", `f.toml:2: transcripts.next_hops: want a list of next hops`},
		{"\n[transcripts]\nclients = [\"192.0.2.0/24\"]\n", `f.toml:2: transcripts.dir: want a directory for the transcripts`},
		{"[transcripts]\ndirectory = \"/x\"\n", `f.toml:2: transcripts.directory: unknown key (did you mean "dir"?)`},
	}
	for _, tc := range cases {
		_, err := Parse("f.toml", []byte(tc.doc))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s…", tc.doc, err, tc.want)
		}
	}
}

func TestTranscriptMatching(t *testing.T) {
	r := Transcripts{
		Dir:      "/t",
		Clients:  []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		NextHops: []string{"mx.example.com", ".partner.example", "198.51.100.25"},
	}
	ip := netip.MustParseAddr
	clients := []struct {
		ip   string
		want bool
	}{{"192.0.2.9", true}, {"::ffff:192.0.2.9", true}, {"192.0.3.1", false}}
	for _, tc := range clients {
		if got := r.MatchClient(ip(tc.ip)); got != tc.want {
			t.Errorf("MatchClient(%s) = %v", tc.ip, got)
		}
	}
	hops := []struct {
		host, ip string
		want     bool
	}{
		{"MX.example.com.", "203.0.113.1", true},
		{"a.partner.example", "203.0.113.1", true},
		{"partner.example", "203.0.113.1", false},
		{"other.example", "198.51.100.25", true},
		{"other.example", "203.0.113.1", false},
		{"xmx.example.com", "203.0.113.1", false},
	}
	for _, tc := range hops {
		if got := r.MatchNextHop(tc.host, ip(tc.ip)); got != tc.want {
			t.Errorf("MatchNextHop(%s, %s) = %v", tc.host, tc.ip, got)
		}
	}
	r.Dir = ""
	if r.MatchClient(ip("192.0.2.9")) || r.MatchNextHop("mx.example.com", netip.Addr{}) || r.Enabled() {
		t.Error("rules without a directory select a session")
	}
}
