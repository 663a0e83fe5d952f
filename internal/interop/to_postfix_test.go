package interop

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/postfixtest"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// captureLimit bounds the wait for Postfix to capture what Ferry relayed.
const captureLimit = 90 * time.Second

const (
	testSender = "tester@example.net"
	destDomain = "dest.test"
)

// debugPeer makes Postfix's smtpd log every command it receives from
// 127.0.0.1 ("< 127.0.0.1[127.0.0.1]: MAIL FROM:<…> BODY=8BITMIME") in
// the instance's maillog_file, so a test can see from Postfix's side what
// Ferry sent.
var debugPeer = map[string]string{
	"debug_peer_list":  "127.0.0.1",
	"debug_peer_level": "2",
}

// routeTo is Ferry's --route flag sending every domain to the instance at
// addr ("127.0.0.1:PORT") without MX lookup.
func routeTo(t *testing.T, domain, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("next hop address %q: %v", addr, err)
	}
	return domain + "=[127.0.0.1]:" + port
}

// relayAll sends every message into Ferry at addr over one session, each
// to its own recipient in destDomain.
func relayAll(t *testing.T, addr string, msgs []testMessage) {
	t.Helper()
	c := testrelay.Dial(t, addr)
	for _, m := range msgs {
		c.Send(testSender, []string{m.rcpt(destDomain)}, testrelay.BodyParam(m.data), m.data)
	}
	c.Quit()
}

// byRecipient indexes captured messages by their single recipient.
func byRecipient(t *testing.T, got []postfixtest.Message) map[string]postfixtest.Message {
	t.Helper()
	out := map[string]postfixtest.Message{}
	for _, m := range got {
		if len(m.Recipients) != 1 {
			t.Errorf("Postfix queue ID %s captured for %q, want one recipient", m.QueueID, m.Recipients)
			continue
		}
		if _, dup := out[m.Recipients[0]]; dup {
			t.Errorf("message for %s captured twice", m.Recipients[0])
		}
		out[m.Recipients[0]] = m
	}
	return out
}

// mailFromLines returns the MAIL commands Postfix's smtpd received, as
// its debug_peer logging recorded them.
func mailFromLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if _, cmd, ok := strings.Cut(l, "]: < "); ok {
			if _, c, ok := strings.Cut(cmd, ": "); ok && strings.HasPrefix(strings.ToUpper(c), "MAIL FROM:") {
				out = append(out, c)
			}
		}
	}
	return out
}

// mailFromFor returns the logged MAIL command of the transaction that
// delivered rcpt: the last MAIL, in the same smtpd process, before the
// RCPT TO:<rcpt> line (Ferry may use several connections at once, and
// their lines interleave in the log).
func mailFromFor(log, rcpt string) string {
	last := map[string]string{} // smtpd process ("smtpd[PID") → its last MAIL
	for _, l := range strings.Split(log, "\n") {
		proc, cmd, ok := strings.Cut(l, "]: < ")
		if !ok {
			continue
		}
		_, c, ok := strings.Cut(cmd, ": ")
		if !ok {
			continue
		}
		if i := strings.LastIndex(proc, " "); i >= 0 {
			proc = proc[i+1:]
		}
		switch up := strings.ToUpper(c); {
		case strings.HasPrefix(up, "MAIL FROM:"):
			last[proc] = c
		case strings.HasPrefix(up, "RCPT TO:<"+strings.ToUpper(rcpt)+">"):
			return last[proc]
		}
	}
	return ""
}

// queueID returns the queue ID a Postfix-style delivery log line starts
// its message with: msg="ID: to=<…>".
func queueID(line string) string {
	_, rest, _ := strings.Cut(line, `msg="`)
	id, _, _ := strings.Cut(rest, ": ")
	return id
}

// TestFerryToPostfix relays every test message through "ferry serve" to a
// real Postfix that offers 8BITMIME: each arrives with its content
// identical (trace fields aside), 8-bit ones sent with BODY=8BITMIME and
// 7-bit ones without (RFC 6152 §2). A message with a line over 998 octets
// is the exception: those leaves are encoded (they may not go on the wire
// as they are, RFC 5321 §4.5.3.1.6) and must decode to the original.
func TestFerryToPostfix(t *testing.T) {
	pf := postfixtest.Start(t, postfixtest.Options{ExtraMain: debugPeer})
	f := startFerry(t, routeTo(t, "*", pf.Addr()))
	msgs := loadMessages(t)
	begin := time.Now()
	relayAll(t, f.Addr, msgs)
	got := byRecipient(t, pf.WaitMessages(len(msgs), captureLimit))
	t.Logf("%d messages relayed to Postfix in %v", len(msgs), time.Since(begin).Round(time.Millisecond))
	log := pf.WaitLog(captureLimit, func(l string) bool { return len(mailFromLines(l)) >= len(msgs) })
	for _, m := range msgs {
		rcpt := m.rcpt(destDomain)
		c, ok := got[rcpt]
		if !ok {
			t.Errorf("%s: nothing captured for %s", m.name, rcpt)
			continue
		}
		if c.Sender != testSender {
			t.Errorf("%s: envelope sender %q, want %q", m.name, c.Sender, testSender)
		}
		content, received := testrelay.StripTrace(c.CRLF())
		if received < 2 {
			t.Errorf("%s: %d Received fields, want Postfix's and Ferry's", m.name, received)
		}
		if testrelay.LongestLine(m.data) <= testrelay.MaxLine {
			if !bytes.Equal(content, m.data) {
				t.Errorf("%s: content changed on the way\ngot:\n%s\nwant:\n%s", m.name, content, m.data)
			}
		} else {
			testrelay.CheckSameDecoded(t, m.name, m.data, content)
			testrelay.CheckLines(t, m.name, content)
		}
		mail := mailFromFor(log, rcpt)
		switch {
		case mail == "":
			t.Errorf("%s: Postfix's log has no MAIL command for %s (is debug_peer logging on?)", m.name, rcpt)
		case testrelay.Has8Bit(content) != strings.Contains(strings.ToUpper(mail), "BODY=8BITMIME"):
			// RFC 6152 §2: BODY=8BITMIME for 8-bit content; never
			// claimed for 7-bit content (DESIGN.md §2, issue 4).
			t.Errorf("%s: Postfix received %q for content with 8-bit octets: %v", m.name, mail, testrelay.Has8Bit(content))
		}
		line := f.WaitLog(t, "to=<"+rcpt+">", "status=sent")
		if converted := strings.Contains(line, "converted"); converted != (testrelay.LongestLine(m.data) > testrelay.MaxLine) {
			t.Errorf("%s: conversion logged: %v, want it only for lines over %d octets: %s", m.name, converted, testrelay.MaxLine, line)
		}
	}
}

// TestFerryToPostfixWithout8BITMIME is the Domino case (DESIGN.md §1,
// issue 5 "End to end"): the next hop, a real Postfix with
// smtpd_discard_ehlo_keywords = 8bitmime, does not offer 8BITMIME. Every
// message must arrive 7-bit only, each MIME leaf decoding to the
// original's octets, and Postfix's own log must show that Ferry never sent
// BODY=8BITMIME (RFC 6152 §3: the relay "must not, under any
// circumstances" send such content to it).
func TestFerryToPostfixWithout8BITMIME(t *testing.T) {
	pf := postfixtest.Start(t, postfixtest.Options{DiscardEHLOKeywords: []string{"8bitmime"}, ExtraMain: debugPeer})
	// The premise: this Postfix does not offer 8BITMIME.
	probe := testrelay.Dial(t, pf.Addr())
	for _, l := range probe.EHLO.Lines {
		if strings.EqualFold(strings.Fields(l + " x")[0], "8BITMIME") {
			t.Fatalf("Postfix still offers 8BITMIME: %v", probe.EHLO)
		}
	}
	probe.Quit()

	f := startFerry(t, routeTo(t, "*", pf.Addr()))
	msgs := loadMessages(t)
	begin := time.Now()
	relayAll(t, f.Addr, msgs)
	got := byRecipient(t, pf.WaitMessages(len(msgs), captureLimit))
	t.Logf("%d messages relayed to a 7-bit Postfix in %v", len(msgs), time.Since(begin).Round(time.Millisecond))
	for _, m := range msgs {
		rcpt := m.rcpt(destDomain)
		c, ok := got[rcpt]
		if !ok {
			t.Errorf("%s: nothing captured for %s", m.name, rcpt)
			continue
		}
		data := c.CRLF()
		testrelay.Check7Bit(t, m.name, data)
		content, _ := testrelay.StripTrace(data)
		testrelay.CheckSameDecoded(t, m.name, m.data, content)
		if !testrelay.Has8Bit(m.data) && testrelay.LongestLine(m.data) <= testrelay.MaxLine && !bytes.Equal(content, m.data) {
			t.Errorf("%s: a 7-bit message was changed\ngot:\n%s\nwant:\n%s", m.name, content, m.data)
		}
		line := f.WaitLog(t, "to=<"+rcpt+">", "status=")
		if !strings.Contains(line, "status=sent") {
			t.Errorf("%s: Ferry's delivery log: %s", m.name, line)
		}
		if testrelay.Has8Bit(m.data) && !strings.Contains(line, "→7BIT converted") {
			t.Errorf("%s: Ferry's delivery log does not show the conversion (want \"→7BIT converted\"): %s", m.name, line)
		}
		// Every conversion has its own log line, keyed by queue ID
		// (issue 5, "Log and count every conversion").
		if id := queueID(line); testrelay.Has8Bit(m.data) && len(f.LogLines(id+": converted for ")) != 1 {
			t.Errorf("%s: want one \"%s: converted for …\" line in Ferry's log, got %q", m.name, id, f.LogLines(id+": converted"))
		}
	}

	// From Postfix's side: one MAIL command per message, none with
	// BODY=8BITMIME.
	mails := mailFromLines(pf.WaitLog(captureLimit, func(l string) bool { return len(mailFromLines(l)) >= len(msgs) }))
	if len(mails) != len(msgs) {
		t.Errorf("Postfix logged %d MAIL commands, want %d: %q", len(mails), len(msgs), mails)
	}
	for _, l := range mails {
		if strings.Contains(strings.ToUpper(l), "BODY=8BITMIME") {
			t.Errorf("Ferry sent %q to a hop without 8BITMIME", l)
		}
	}
}
