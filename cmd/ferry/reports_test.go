package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/sink"
)

// TestServeDSNSettings runs serve with [dsn] postmaster and
// max_return_size: a failure report about a large message returns only its
// header, and the failure of a message from the null sender goes to the
// postmaster.
func TestServeDSNSettings(t *testing.T) {
	dir := t.TempDir()
	spool, file := filepath.Join(dir, "spool"), filepath.Join(dir, "ferry.toml")
	rule, err := sink.ParseRule("RCPT:bad@*=550 5.1.1 no such user")
	if err != nil {
		t.Fatal(err)
	}
	hop, err := sink.Start(sink.Options{Rules: []sink.Rule{rule}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hop.Close() })
	writeFile(t, file, reloadConfig(spool, hop.Addr(), `
[dsn]
postmaster = "postmaster@company.example"
max_return_size = "1KiB"
`))
	rs := startServe(t, file)

	big := strings.Repeat("a line of the message body that makes it larger than one KiB\r\n", 40)
	send := func(from string) {
		c := dialSMTP(t, rs.addr)
		defer c.cmd("QUIT")
		c.cmd("EHLO client.test")
		for _, cmd := range []string{"MAIL FROM:<" + from + ">", "RCPT TO:<bad@company.example>", "DATA"} {
			if r := c.cmd(cmd); r[0] != '2' && r[0] != '3' {
				t.Fatalf("%s: %q", cmd, r)
			}
		}
		if r := c.cmd("Subject: big\r\n\r\n" + big + "."); !strings.HasPrefix(r, "250 ") {
			t.Fatalf("end of data: %q", r)
		}
	}
	send("app@company.example")
	send("")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	msgs, err := hop.Wait(ctx, 2)
	if err != nil {
		t.Fatalf("reports at the hop: %v\n%s", err, rs.logs)
	}
	var toSender, toPostmaster string
	for _, m := range msgs {
		if len(m.Envelope.Rcpts) != 1 || !m.Envelope.From.IsNull() {
			t.Errorf("unexpected message at the hop: %+v", m.Envelope)
			continue
		}
		switch m.Envelope.Rcpts[0].Addr.Address() {
		case "app@company.example":
			toSender = string(m.Data)
		case "postmaster@company.example":
			toPostmaster = string(m.Data)
		}
	}
	if !strings.Contains(toSender, "text/rfc822-headers") || strings.Contains(toSender, big[:60]) {
		t.Errorf("report to the sender does not return the header only:\n%s", toSender)
	}
	if !strings.Contains(toPostmaster, "Status: 5.1.1") {
		t.Errorf("no failure report to the postmaster:\n%s", toPostmaster)
	}
}
