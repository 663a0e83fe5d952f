package interop

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/postfixtest"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestPostfixRecipientReplies has a real Postfix answer Ferry's RCPT
// commands with its own 5xx and 4xx replies (from an access table) while
// accepting the other recipients of the same message (issue 4, "Results
// per recipient"): the accepted recipient is delivered once, the rejected
// one ends bounced with Postfix's reply text, the deferred one deferred
// with its reply, and none of them is delivered twice or lost.
func TestPostfixRecipientReplies(t *testing.T) {
	pf := postfixtest.Start(t, postfixtest.Options{ExtraMain: map[string]string{
		"smtpd_recipient_restrictions": "check_recipient_access inline:{ " +
			"{ rejected@dest.test = 550 5.1.1 no such user here } " +
			"{ later@dest.test = 450 4.2.1 mailbox busy, try later } }",
	}})
	f := startFerry(t, routeTo(t, "*", pf.Addr()))
	msg := testrelay.ReadTestdata(t, "simple-utf8-french.eml")

	c := testrelay.Dial(t, f.Addr)
	c.Expect(250, c.Cmd("MAIL FROM:<%s> BODY=8BITMIME", testSender))
	for _, r := range []string{"ok@dest.test", "rejected@dest.test", "later@dest.test", "ok2@dest.test"} {
		c.Expect(250, c.Cmd("RCPT TO:<%s>", r))
	}
	c.Expect(354, c.Cmd("DATA"))
	c.Write(testrelay.DotStuff(msg))
	c.Expect(250, c.Read())
	c.Quit()

	bounced := f.WaitLog(t, "to=<rejected@dest.test>", "status=")
	if !strings.Contains(bounced, "status=bounced") || !containsAll(bounced, []string{"550 5.1.1 <rejected@dest.test>", "no such user here"}) {
		t.Errorf("rejected recipient: want status=bounced with Postfix's reply, got: %s", bounced)
	}
	deferred := f.WaitLog(t, "to=<later@dest.test>", "status=")
	if !strings.Contains(deferred, "status=deferred") || !containsAll(deferred, []string{"450 4.2.1 <later@dest.test>", "mailbox busy, try later"}) {
		t.Errorf("deferred recipient: want status=deferred with Postfix's reply, got: %s", deferred)
	}
	for _, r := range []string{"ok@dest.test", "ok2@dest.test"} {
		if l := f.WaitLog(t, "to=<"+r+">", "status="); !strings.Contains(l, "status=sent") {
			t.Errorf("%s: want status=sent, got: %s", r, l)
		}
	}

	// Postfix delivers once per recipient domain: one capture for both
	// accepted recipients, with the content as sent.
	got := waitRecipients(t, pf, 2)
	var rcpts []string
	for _, m := range got {
		rcpts = append(rcpts, m.Recipients...)
		content, _ := testrelay.StripTrace(m.CRLF())
		if string(content) != string(msg) {
			t.Errorf("content changed on the way:\n%s", content)
		}
	}
	slices.Sort(rcpts)
	if strings.Join(rcpts, " ") != "ok2@dest.test ok@dest.test" {
		t.Errorf("Postfix delivered to %q, want ok@dest.test and ok2@dest.test once each", rcpts)
	}
	if n := len(f.LogLines("to=<rejected@dest.test>", "status=")); n != 1 {
		t.Errorf("the rejected recipient has %d result lines, want 1 (a 5xx is final)", n)
	}
}

// waitRecipients waits until Postfix has captured deliveries to at least n
// recipients in all (it may deliver several recipients at once, or not),
// and returns the captures.
func waitRecipients(t *testing.T, pf *postfixtest.Instance, n int) []postfixtest.Message {
	t.Helper()
	deadline := time.Now().Add(captureLimit)
	for {
		got := originals(pf.Messages())
		count := 0
		for _, m := range got {
			count += len(m.Recipients)
		}
		if count >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix captured %d of %d recipients within %v", count, n, captureLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConvertedMessageTooBigForPostfix: conversion makes a message larger
// (base64 by a third), so a message that fits a 7-bit hop's SIZE limit as
// stored may not fit once converted. Postfix (message_size_limit 2600,
// advertised as SIZE 2600, 8BITMIME discarded) would refuse it; Ferry
// checks the size after conversion against that limit before MAIL and
// fails it at once with 552 5.3.4 (bounced, no retry), and nothing may be
// delivered.
func TestConvertedMessageTooBigForPostfix(t *testing.T) {
	pf := postfixtest.Start(t, postfixtest.Options{
		DiscardEHLOKeywords: []string{"8bitmime"},
		ExtraMain:           map[string]string{"message_size_limit": "2600"},
	})
	f := startFerry(t, routeTo(t, "*", pf.Addr()))
	m := testMessage{"html-and-text-cyrillic", testrelay.ReadTestdata(t, "html-and-text-cyrillic.eml")}
	if len(m.data) > 2300 {
		t.Fatalf("test message of %d octets: too big to fit the limit before conversion", len(m.data))
	}
	relayAll(t, f.Addr, []testMessage{m})
	l := f.WaitLog(t, "to=<"+m.rcpt(destDomain)+">", "status=")
	if !containsAll(l, []string{"status=bounced", "552 5.3.4"}) {
		t.Errorf("want status=bounced with 552 5.3.4, got: %s", l)
	}
	if n := len(originals(pf.Messages())); n != 0 {
		t.Errorf("Postfix captured %d messages, want none", n)
	}
}

// originals leaves out the messages with the null sender: Ferry's delivery
// status notifications, which reach the same Postfix when every domain is
// routed there.
func originals(msgs []postfixtest.Message) []postfixtest.Message {
	var out []postfixtest.Message
	for _, m := range msgs {
		if m.Sender != "" {
			out = append(out, m)
		}
	}
	return out
}
