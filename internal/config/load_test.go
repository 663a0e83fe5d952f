package config

import (
	"github.com/ferrymta/ferry/internal/access"
	"github.com/ferrymta/ferry/internal/route"

	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c := Default()
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"hostname", c.Hostname, host},
		{"listeners", len(c.Listeners), 1},
		{"listener.address", c.Listeners[0].Address, "127.0.0.1:2525"},
		{"listener.keywords", c.Listeners[0].Keywords, []string{"8BITMIME", "PIPELINING", "SIZE", "DSN", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "BINARYMIME"}},
		{"listener.max_message_size", c.Listeners[0].MaxMessageSize, int64(50_000_000)},
		{"listener.max_recipients", c.Listeners[0].MaxRecipients, 1000},
		{"listener.bare_newline", c.Listeners[0].BareNewline, "normalize"},
		{"listener.transcript_dir", c.Listeners[0].TranscriptDir, ""},
		{"listener TLS and AUTH", [6]any{c.Listeners[0].TLSCert, c.Listeners[0].TLSKey, c.Listeners[0].RequireTLS,
			c.Listeners[0].ImplicitTLS, c.Listeners[0].AuthUsersFile, c.Listeners[0].AllowInsecureAuth}, [6]any{"", "", false, false, "", false}},
		{"relay", c.Relay, Relay{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}},
		{"limits", c.Limits, Limits{1000, 50, 20, 100, 100, 4}},
		{"timeouts", c.Timeouts, Timeouts{5 * time.Minute, 5 * time.Minute, 3 * time.Minute, 30 * time.Minute,
			5 * time.Minute, 10 * time.Minute, time.Second, 10 * time.Second}},
		{"queue", c.Queue, Queue{"/var/spool/ferry", 5 * time.Minute, time.Hour, 120 * time.Hour, 24 * time.Hour, 4 * time.Hour, 10, 64 << 20, 0, "segment", "", "", 30 * time.Second}},
		{"delivery.ehlo_name", c.Delivery.EHLOName, ""},
		{"EHLOName()", c.EHLOName(), host},
		{"delivery.workers", c.Delivery.Workers, 20},
		{"delivery.max_messages_per_connection", c.Delivery.MaxMessagesPerConnection, 100},
		{"delivery.idle_timeout", c.Delivery.IdleTimeout, 10 * time.Second},
		{"delivery.smarthost", c.Delivery.Smarthost, ""},
		{"delivery.tls_ca_file", c.Delivery.TLSCAFile, ""},
		{"delivery.timeouts", c.Delivery.Timeouts, DeliveryTimeouts{30 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute, 2 * time.Minute, 3 * time.Minute, 10 * time.Minute}},
		{"routes", len(c.Routes), 0},
		{"log", c.Log, Log{"text", "info", ""}},
		{"admin", c.Admin, Admin{}},
		{"AdminAddress()", c.AdminAddress(), "/var/spool/ferry/admin.sock"},
		{"route defaults", DefaultRoute(), Route{EightBit: "convert", DKIMSigned: "convert", TLS: "may"}},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
	// An empty file is the defaults.
	got, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatalf("Parse(empty): %v", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Parse(empty) = %+v, want the defaults %+v", got, c)
	}
}

const fullConfig = `# a complete configuration
hostname = "Relay.Example.COM."

[[listener]]
address = "0.0.0.0:25"
keywords = ["8bitmime", "PIPELINING", "SIZE", "STARTTLS"]
max_message_size = "64MiB"
max_recipients = 100
bare_newline = "reject"
transcript_dir = "/var/log/ferry/transcripts"
tls_cert = "/etc/ferry/cert.pem"
tls_key = "/etc/ferry/key.pem"
require_tls = true
auth_users_file = "/etc/ferry/users.txt"

[[listener]]
address = "[::1]:587"
keywords = []
max_message_size = 0
auth_users_file = "/etc/ferry/users.txt"
allow_insecure_auth = true

[[listener]]
address = "0.0.0.0:465"
tls_cert = "/etc/ferry/cert.pem"
tls_key = "/etc/ferry/key.pem"
implicit_tls = true

[limits]
max_connections = 10
max_connections_per_ip = 10
max_errors = 5
max_received = 30
reserved_connections = 2
max_auth_checks = 3

[timeouts]
greeting = "30s"
command = "1m"
data_block = "2m"
data_total = "1h30m"
hello_phase = "4m"
envelope_phase = "8m"
pregreet_wait = "0s"
auth_check_wait = "7s"

[relay]
networks = ["10.0.0.0/8", "192.0.2.7", "[2001:db8::]/32", "::ffff:172.16.0.0/108"]
accept_domains = ["Company.Example.", ".company.example", "Bücher.example"]

[[relay.sender_rule]]
networks = ["10.1.0.0/16"]
domains = ["company.example"]

[[relay.sender_rule]]
users = ["alice@company.example", "relay-app"]
domains = [".company.example", "company.example"]

[relay.rate]
per_ip = "100/1m"
per_user = "1000/1d"

[queue]
spool = "/srv/spool"
retry_initial = "1m"
retry_max = "2h"
lifetime = "5d"
bounce_lifetime = "1d12h"
delay_warning = "0s"
hop_concurrency = 3
segment_size = 1048576

[delivery]
workers = 4
max_messages_per_connection = 7
idle_timeout = "0s"
smarthost = "[smarthost.example.net]:587, backup.example.net"
tls_ca_file = "/etc/ferry/ca.pem"

[delivery.timeouts]
connect = "5s"
greeting = "1m"
mail = "1m"
rcpt = "1m"
data_init = "1m"
data_block = "1m"
data_done = "1m"

[[route]]
domain = "company.example"
nexthop = "[domino.company.example]:25"
eightbit = "bounce"
dkim_signed = "bounce"
tls = "required"
auth_user = "relay"
auth_password_file = "/etc/ferry/relay.pw"
ehlo_name = "out.example.com"
discard_keywords = ["chunking"]
max_connections = 2
max_messages_per_connection = 1

[[route]]
domain = "*"

[log]
format = "json"
level = "debug"
file = "/var/log/ferry.log"

[admin]
address = "/run/ferry/admin.sock"
`

func TestParseFull(t *testing.T) {
	c, err := Parse("full.toml", []byte(fullConfig))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Default()
	want.Hostname = "relay.example.com"
	want.Listeners = []Listener{
		{
			Address: "0.0.0.0:25", Keywords: []string{"8BITMIME", "PIPELINING", "SIZE", "STARTTLS"}, MaxMessageSize: 64 << 20,
			MaxRecipients: 100, BareNewline: "reject", TranscriptDir: "/var/log/ferry/transcripts",
			TLSCert: "/etc/ferry/cert.pem", TLSKey: "/etc/ferry/key.pem", RequireTLS: true, AuthUsersFile: "/etc/ferry/users.txt",
		},
		{
			Address: "[::1]:587", Keywords: nil, MaxMessageSize: 0, MaxRecipients: 1000, BareNewline: "normalize",
			AuthUsersFile: "/etc/ferry/users.txt", AllowInsecureAuth: true,
		},
		{
			Address: "0.0.0.0:465", Keywords: DefaultKeywords(), MaxMessageSize: 50_000_000, MaxRecipients: 1000, BareNewline: "normalize",
			TLSCert: "/etc/ferry/cert.pem", TLSKey: "/etc/ferry/key.pem", ImplicitTLS: true,
		},
	}
	want.Relay = Relay{
		Networks: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
			netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("172.16.0.0/12"),
		},
		AcceptDomains: []string{"company.example", ".company.example", "xn--bcher-kva.example"},
		SenderRules: []access.SenderRule{
			{Networks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Domains: []string{"company.example"}},
			{Users: []string{"alice@company.example", "relay-app"}, Domains: []string{".company.example", "company.example"}},
		},
		PerIP:   access.RateLimit{Messages: 100, Interval: time.Minute},
		PerUser: access.RateLimit{Messages: 1000, Interval: 24 * time.Hour},
	}
	want.Limits = Limits{10, 10, 5, 30, 2, 3}
	want.Timeouts = Timeouts{30 * time.Second, time.Minute, 2 * time.Minute, 90 * time.Minute,
		4 * time.Minute, 8 * time.Minute, 0, 7 * time.Second}
	want.Queue = Queue{"/srv/spool", time.Minute, 2 * time.Hour, 120 * time.Hour, 36 * time.Hour, 0, 3, 1 << 20, 0, "segment", "", "", 30 * time.Second}
	want.Delivery = Delivery{
		Workers: 4, MaxMessagesPerConnection: 7, IdleTimeout: 0,
		Smarthost:     "[smarthost.example.net]:587, backup.example.net",
		SmarthostHops: []route.NextHop{{Host: "smarthost.example.net", Port: 587, NoMX: true}, {Host: "backup.example.net", Port: 25}},
		TLSCAFile:     "/etc/ferry/ca.pem",
		Timeouts:      DeliveryTimeouts{5 * time.Second, time.Minute, time.Minute, time.Minute, time.Minute, time.Minute, time.Minute},
		TLSPolicy:     DefaultTLSPolicy(),
	}
	want.Routes = []Route{
		{
			Domain: "company.example", NextHop: "[domino.company.example]:25",
			NextHops: []route.NextHop{{Host: "domino.company.example", Port: 25, NoMX: true}},
			EightBit: "bounce", DKIMSigned: "bounce", TLS: "required",
			AuthUser: "relay", AuthPasswordFile: "/etc/ferry/relay.pw", EHLOName: "out.example.com",
			DiscardKeywords: []string{"CHUNKING"}, MaxConnections: 2, MaxMessagesPerConnection: 1,
		},
		{Domain: "*", EightBit: "convert", DKIMSigned: "convert", TLS: "may"},
	}
	want.Log = Log{"json", "debug", "/var/log/ferry.log"}
	want.Admin = Admin{Address: "/run/ferry/admin.sock"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(full):\n got %+v\nwant %+v", c, want)
	}
}

// TestRoundTrip checks that WriteTOML prints what Parse reads back.
func TestRoundTrip(t *testing.T) {
	full, err := Parse("full.toml", []byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	odd := Default()
	odd.Listeners[0].TranscriptDir = "C:\\dir with \"quotes\"\t\x01é"
	odd.Listeners[0].MaxMessageSize = 1234567
	odd.Timeouts.DataTotal = 90*time.Minute + 1500*time.Millisecond
	closed := Default() // no network relays; odd rates; a rule by user only
	closed.Relay.Networks = []netip.Prefix{}
	closed.Relay.PerIP = access.RateLimit{Messages: 7, Interval: 90*time.Minute + 15*time.Second}
	closed.Relay.PerUser = access.RateLimit{Messages: 1, Interval: time.Millisecond}
	closed.Relay.SenderRules = []access.SenderRule{{Users: []string{"ü@example.com"}, Domains: []string{".xn--bcher-kva.example"}}}
	closed.Listeners[0].AuthUsersFile = "/u"
	closed.Listeners[0].AllowInsecureAuth = true
	for name, c := range map[string]Config{"default": Default(), "full": full, "odd": odd, "closed": closed} {
		var buf bytes.Buffer
		if err := c.WriteTOML(&buf); err != nil {
			t.Fatalf("%s: WriteTOML: %v", name, err)
		}
		back, err := Parse(name+".toml", buf.Bytes())
		if err != nil {
			t.Fatalf("%s: Parse(WriteTOML()): %v\n%s", name, err, buf.String())
		}
		if !reflect.DeepEqual(back, c) {
			t.Errorf("%s: round trip:\n got %+v\nwant %+v\n%s", name, back, c, buf.String())
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(path, []byte("[limits]\nmax_errors = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + `:2: limits.max_errors: want a whole number of at least 1, got 0`
	if err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 2 || ce.Key != "limits.max_errors" || ce.File != path {
		t.Errorf("errors.As(*Error) = %+v", ce)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}

func TestErrorsAreAllReportedInLineOrder(t *testing.T) {
	doc := "[queue]\nhop_concurrency = 0\n[limits]\nmax_errors = -1\n[log]\nlevel = \"loud\"\nbogus = 1\n"
	_, err := Parse("f.toml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	want := strings.Join([]string{
		`f.toml:2: queue.hop_concurrency: want a whole number of at least 1, got 0`,
		`f.toml:4: limits.max_errors: want a whole number of at least 1, got -1`,
		`f.toml:6: log.level: want "debug", "info", "warn" or "error", got "loud"`,
		`f.toml:7: log.bogus: unknown key; want one of: file, format, level`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}

// TestIsLoopbackAddress checks which admin addresses count as loopback.
func TestIsLoopbackAddress(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8025": true, "127.1.2.3:1": true, "[::1]:8025": true, "localhost:8025": true,
		"0.0.0.0:8025": false, ":8025": false, "[::]:8025": false, "192.0.2.1:8025": false, "8025": false,
	} {
		if got := IsLoopbackAddress(addr); got != want {
			t.Errorf("IsLoopbackAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}
