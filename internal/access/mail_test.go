package access

import (
	"net/netip"
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

// TestMailSenderRules checks the sender-domain rules per network and user.
func TestMailSenderRules(t *testing.T) {
	p, err := New(Config{
		RelayNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		SenderRules: []SenderRule{
			{Networks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Domains: []string{"app.example"}},
			{Networks: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}, Domains: []string{"Bücher.example", ".lists.example"}},
			{Users: []string{"alice"}, Domains: []string{"alice.example"}},
			{Users: []string{"alice", "bob"}, Domains: []string{"shared.example"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	app := Client{IP: netip.MustParseAddr("10.1.0.5")}
	books := Client{IP: netip.MustParseAddr("::ffff:10.2.3.4")}
	free := Client{IP: netip.MustParseAddr("10.3.0.1")}
	alice := Client{IP: netip.MustParseAddr("203.0.113.5"), User: "alice"}
	aliceInApp := Client{IP: netip.MustParseAddr("10.1.9.9"), User: "alice"}
	bob := Client{IP: netip.MustParseAddr("203.0.113.6"), User: "bob"}
	carol := Client{IP: netip.MustParseAddr("203.0.113.7"), User: "carol"}
	outsider := Client{IP: netip.MustParseAddr("192.0.2.1")}
	path := func(local, domain string) smtp.Path { return smtp.Path{LocalPart: local, Domain: domain} }

	tests := []struct {
		name string
		c    Client
		from smtp.Path
		want bool
	}{
		{"app network, own domain", app, path("noreply", "app.example"), true},
		{"app network, own domain upper case, trailing dot", app, path("noreply", "APP.Example."), true},
		{"app network, spoofed domain", app, path("ceo", "bank.example"), false},
		{"app network, suffix trick", app, path("x", "app.example.evil"), false},
		{"app network, subdomain of exact entry", app, path("x", "mail.app.example"), false},
		{"app network, null sender", app, smtp.Path{}, true},
		{"app network, literal sender", app, path("x", "[10.1.0.5]"), false},
		{"app network, invalid domain", app, path("x", "app..example"), false},
		{"books network, A-label", books, path("x", "xn--bcher-kva.example"), true},
		{"books network, U-label", books, path("x", "BÜCHER.example"), true},
		{"books network, list subdomain", books, path("owner", "dev.lists.example"), true},
		{"books network, lists itself", books, path("owner", "lists.example"), false},
		{"network without a rule", free, path("anyone", "anything.example"), true},
		{"outsider without a rule", outsider, path("anyone", "anything.example"), true},
		{"alice, own domain", alice, path("alice", "alice.example"), true},
		{"alice, shared domain", alice, path("alice", "shared.example"), true},
		{"alice, other domain", alice, path("alice", "bob.example"), false},
		{"alice in app network, union of rules", aliceInApp, path("alice", "app.example"), true},
		{"alice in app network, alice domain", aliceInApp, path("alice", "alice.example"), true},
		{"alice in app network, foreign domain", aliceInApp, path("alice", "bank.example"), false},
		{"bob, shared domain", bob, path("bob", "shared.example"), true},
		{"bob, alice's domain", bob, path("bob", "alice.example"), false},
		{"carol has no rule", carol, path("carol", "whatever.example"), true},
		{"user names are exact", Client{IP: outsider.IP, User: "Alice"}, path("a", "bank.example"), true},
	}
	for _, tt := range tests {
		d := p.Mail(tt.c, tt.from)
		if d.Allow != tt.want {
			t.Errorf("%s: Mail = %v (%s), want %v", tt.name, d.Allow, d.Reason, tt.want)
			continue
		}
		if d.Reason == "" {
			t.Errorf("%s: no reason", tt.name)
		}
		if !d.Allow && (d.Reply.Code != 553 || d.Reply.Enhanced != "5.7.1") {
			t.Errorf("%s: reply %q, want 553 5.7.1", tt.name, d.Reply)
		}
		if d.Allow && d.Reply.Code != 0 {
			t.Errorf("%s: allowed with reply %q", tt.name, d.Reply)
		}
	}
}
