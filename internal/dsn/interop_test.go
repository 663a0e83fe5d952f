package dsn

import (
	"bytes"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/postfixtest"
)

// TestPostfixAcceptsReports hands Ferry's reports to a real Postfix (a
// private instance on a loopback port; skipped where Postfix is missing or
// the test is not root) with MAIL FROM:<>, and checks that Postfix accepts
// each one and delivers it unchanged: a DSN must be acceptable to a real MTA.
func TestPostfixAcceptsReports(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postfix")
	}
	pf := postfixtest.Start(t, postfixtest.Options{})
	want := map[string]goldenCase{}
	for _, c := range goldenCases() {
		if c.name != "failed" && c.name != "failed_8bit" && c.name != "failed_smtputf8" && c.name != "delayed" {
			continue
		}
		msg := c.build(t)
		to := c.report.Env.From.Address()
		if err := sendMail(pf.Addr(), to, msg); err != nil {
			t.Fatalf("%s: Postfix refused the report: %v", c.name, err)
		}
		want[string(msg)] = c
	}
	got := pf.WaitMessages(len(want), 60*time.Second)
	if len(got) != len(want) {
		t.Fatalf("Postfix delivered %d reports, want %d", len(got), len(want))
	}
	for _, m := range got {
		if m.Sender != "" {
			t.Errorf("report delivered with sender %q, want the null sender", m.Sender)
		}
		data := m.CRLF()
		found := false
		for msg, c := range want {
			if bytes.HasSuffix(data, []byte(msg)) {
				found = true
				checkReport(t, []byte(msg), c.report, c.original)
			}
		}
		if !found {
			t.Errorf("Postfix delivered a report that differs from every one sent:\n%s", data)
		}
	}
}

// sendMail sends msg with the null reverse path using the standard
// library's client (which adds SMTPUTF8 and BODY=8BITMIME when offered).
func sendMail(addr, to string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("relay.example.com"); err != nil {
		return err
	}
	if err := c.Mail(""); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	// net/smtp's writer turns "\n" into "\r\n"; give it LF lines.
	if _, err := w.Write([]byte(strings.ReplaceAll(string(msg), "\r\n", "\n"))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
