package access

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

// FuzzRcpt feeds arbitrary client addresses, users, local parts, domains
// and raw RCPT arguments to the policy. It checks that nothing panics, that a
// refusal always carries a 5xx reply with a matching enhanced code and a
// reason, that an outside client is only ever let through to postmaster or
// an accepted domain with a clean local part, that a client that may relay
// is never refused what an outside client is allowed, that decisions are
// deterministic, and that NormalizeDomain's output is a fixed point.
func FuzzRcpt(f *testing.F) {
	f.Add("192.0.2.10", "", "user%victim.example", "company.example", "TO:<user%victim.example@company.example>")
	f.Add("10.1.2.3", "alice", "user", "BÜCHER.example.", "TO:<@company.example:user@victim.example>")
	f.Add("::ffff:127.0.0.1", "", "postmaster", "", "TO:<Postmaster>")
	p := testPolicy(f)
	f.Fuzz(func(t *testing.T, ip, user, local, domain, arg string) {
		addr, _ := netip.ParseAddr(ip)
		c := Client{IP: addr, User: user}
		outside := Client{IP: netip.MustParseAddr("192.0.2.10")}
		checkRcpt(t, p, c, outside, smtp.Path{LocalPart: local, Domain: domain})
		if path, _, err := smtp.ParseRcptArg(arg); err == nil {
			checkRcpt(t, p, c, outside, path)
		}
		if n, err := NormalizeDomain(domain); err == nil {
			if again, err := NormalizeDomain(n); err != nil || again != n {
				t.Errorf("NormalizeDomain(%q) = %q, but that normalizes to %q, %v", domain, n, again, err)
			}
			if !isASCII(n) || n != strings.ToLower(n) {
				t.Errorf("NormalizeDomain(%q) = %q, not lower-case ASCII", domain, n)
			}
		}
		d := p.Mail(c, smtp.Path{LocalPart: local, Domain: domain})
		if !d.Allow && !d.Reply.Permanent() {
			t.Errorf("Mail refused with %q", d.Reply)
		}
	})
}

// checkRcpt checks the invariants of one Rcpt decision for client c, and for
// an outside client and the relay-permitted kinds on the same path.
func checkRcpt(t *testing.T, p *Policy, c, outside Client, rcpt smtp.Path) {
	t.Helper()
	d := p.Rcpt(c, rcpt)
	if d2 := p.Rcpt(c, rcpt); d2.Allow != d.Allow || d2.Reply.String() != d.Reply.String() || d2.Reason != d.Reason {
		t.Errorf("Rcpt(%+v) not deterministic: %+v then %+v", rcpt, d, d2)
	}
	checkDenial(t, rcpt, d)
	od := p.Rcpt(outside, rcpt)
	checkDenial(t, rcpt, od)
	if od.Allow && !IsPostmaster(rcpt) {
		n, err := NormalizeDomain(rcpt.Domain)
		switch {
		case err != nil:
			t.Errorf("outside client allowed to %+v with invalid domain: %v", rcpt, err)
		case !p.accept.match(n):
			t.Errorf("outside client allowed to %+v, domain %q not accepted", rcpt, n)
		case strings.ContainsAny(rcpt.LocalPart, "%!@"):
			t.Errorf("outside client allowed to %+v with a routing local part", rcpt)
		}
	}
	for _, rc := range []Client{networkClient(), authedClient()} {
		if rd := p.Rcpt(rc, rcpt); od.Allow && !rd.Allow {
			t.Errorf("%+v allowed from outside but refused to %+v: %s", rcpt, rc, rd.Reason)
		}
	}
}

// checkDenial checks that a refusal with no recipient limit in play is a
// 5xx reply with a 5.x.x enhanced code and a reason, and that an allowed
// decision carries no reply.
func checkDenial(t *testing.T, rcpt smtp.Path, d Decision) {
	t.Helper()
	if d.Allow {
		if d.Reply.Code != 0 {
			t.Errorf("Rcpt(%+v) allowed with reply %q", rcpt, d.Reply)
		}
		return
	}
	if !d.Reply.Permanent() || !strings.HasPrefix(string(d.Reply.Enhanced), "5.") || d.Reason == "" {
		t.Errorf("Rcpt(%+v) refused with %q (%s), want a 5xx reply with a reason", rcpt, d.Reply, d.Reason)
	}
}
