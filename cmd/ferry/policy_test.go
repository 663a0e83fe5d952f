package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusalReasons runs serve with relay rules and checks, over a
// real connection, that the access policy's reasons reach the reject lines
// and not the client, and that the rate limit counts messages at DATA: a
// transaction that never got a recipient does not use up the limit.
func TestServeRefusalReasons(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ferry.toml")
	hop := startSinkHop(t)
	writeFile(t, file, reloadConfig(filepath.Join(dir, "spool"), hop.Addr(), `
[relay]
networks = []
accept_domains = ["company.example"]

[[relay.sender_rule]]
networks = ["127.0.0.0/8"]
domains = ["company.example"]

[relay.rate]
per_ip = "1/1h"
`))
	rs := startServe(t, file)
	c := dialSMTP(t, rs.addr)
	c.cmd("EHLO client.test")
	expect := func(line, want string) {
		t.Helper()
		if r := c.cmd(line); r != want {
			t.Fatalf("%s: %q, want %q", line, r, want)
		}
	}
	expect("MAIL FROM:<app@other.example>", "553 5.7.1 Sender address rejected: not permitted for this client\r\n")
	expect("MAIL FROM:<app@company.example>", "250 2.1.0 Ok\r\n")
	expect("RCPT TO:<x@elsewhere.example>", "554 5.7.1 Relay access denied\r\n")
	expect("RSET", "250 2.0.0 Ok\r\n")
	// The transaction above had no recipient: it did not count.
	expect("MAIL FROM:<app@company.example>", "250 2.1.0 Ok\r\n")
	expect("RCPT TO:<x@company.example>", "250 2.1.5 Ok\r\n")
	expect("DATA", "354 End data with <CR><LF>.<CR><LF>\r\n")
	if r := c.cmd("Subject: one\r\n\r\nHello.\r\n."); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as ") {
		t.Fatalf("end of data: %q", r)
	}
	expect("MAIL FROM:<app@company.example>", "250 2.1.0 Ok\r\n")
	expect("RCPT TO:<x@company.example>", "250 2.1.5 Ok\r\n")
	expect("DATA", "450 4.7.1 Message rate limit exceeded, try again later\r\n")
	c.cmd("QUIT")
	waitMessages(t, hop, 1)

	for _, want := range []string{
		`stage=MAIL reply="553 5.7.1 Sender address rejected: not permitted for this client" command="MAIL FROM:<app@other.example>" reason="client 127.0.0.1 user \"\": sender domain other.example not allowed by sender_rules[0]"`,
		`stage=RCPT reply="554 5.7.1 Relay access denied" command="RCPT TO:<x@elsewhere.example>" from=<app@company.example> reason="client 127.0.0.1: domain elsewhere.example is not an accepted domain"`,
		`stage=DATA reply="450 4.7.1 Message rate limit exceeded, try again later" command=DATA reason="client 127.0.0.1 over 1/1h0m0s messages, next in `,
	} {
		waitFor(t, rs.logs, want)
	}
}
