package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

const sender = "tester@example.net"

// TestPassThroughByteIdentical: a hop with the default keywords (8BITMIME
// among them) receives every test message exactly as sent, apart from
// Ferry's Received: field, and the MAIL line claims 8BITMIME only for an
// 8-bit body.
func TestPassThroughByteIdentical(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, "", "", routeAll(h.Addr))
	names := testMessages(t)
	var sent []string
	ids := map[string]string{} // queue ID → file
	c := testrelay.Dial(t, r.Addr)
	for _, name := range names {
		if name == "long-line-latin1.eml" {
			continue // a line over 998 octets must be converted (TestLongLineConverted)
		}
		content := testrelay.ReadTestdata(t, name)
		id := c.SendID(sender, []string{"postmaster@legacy.example"}, testrelay.BodyParam(content), content)
		ids[id] = name
		sent = append(sent, name)
	}
	c.Quit()
	caps := h.waitCaptures(t, len(sent))
	if len(caps) != len(sent) {
		t.Errorf("sink holds %d messages, want %d", len(caps), len(sent))
	}
	seen := map[string]bool{}
	for _, cp := range caps {
		field, _ := testrelay.StripFirstField(cp.data)
		id := queueIDFromReceived(string(field))
		name, ok := ids[id]
		if !ok {
			t.Errorf("capture %s: Received field %q names no queue ID we got", cp.sc.ID, testrelay.Clip(field))
			continue
		}
		seen[id] = true
		orig := testrelay.ReadTestdata(t, name)
		rest := checkReceived(t, cp.data, id)
		if !bytes.Equal(rest, orig) {
			t.Errorf("%s: arrived changed (%d octets, want %d; first difference at offset %d)\n got: %q\nwant: %q",
				name, len(rest), len(orig), testrelay.FirstDiff(rest, orig), testrelay.Clip(rest[testrelay.FirstDiff(rest, orig):]), testrelay.Clip(orig[testrelay.FirstDiff(rest, orig):]))
		}
		eight := testrelay.BodyParam(orig) != ""
		if claims := strings.Contains(strings.ToUpper(cp.sc.MailLine), "BODY=8BITMIME"); claims != eight {
			t.Errorf("%s: MAIL line %q; 8-bit body: %v", name, cp.sc.MailLine, eight)
		}
	}
	if len(seen) != len(sent) {
		t.Errorf("%d distinct messages arrived, want %d", len(seen), len(sent))
	}
}

// queueIDFromReceived extracts "id X" from a Received field.
func queueIDFromReceived(field string) string {
	f := strings.Fields(field)
	for i := 0; i+1 < len(f); i++ {
		if strings.EqualFold(f[i], "id") {
			return strings.TrimSuffix(f[i+1], ";")
		}
	}
	return ""
}

// checkSevenBit checks a message that reached a hop without 8BITMIME: a
// clean 7-bit wire form, no BODY=8BITMIME, and leaves that decode to the
// original's octets.
func checkSevenBit(t *testing.T, name string, orig []byte, cp capture) {
	t.Helper()
	if p := testrelay.Problems7Bit(cp.data); len(p) > 0 {
		t.Errorf("%s: not valid 7-bit content: %s", name, strings.Join(p, "; "))
	}
	if strings.Contains(strings.ToUpper(cp.sc.MailLine), "8BITMIME") {
		t.Errorf("%s: MAIL line %q claims 8BITMIME to a hop that did not offer it", name, cp.sc.MailLine)
	}
	_, rest := testrelay.StripFirstField(cp.data)
	if d := testrelay.DiffDecoded(orig, rest); len(d) > 0 {
		t.Errorf("%s: converted content does not decode to the original:\n  %s", name, strings.Join(d, "\n  "))
	}
}

// TestDominoSevenBitHop is the scenario Ferry was born from: a next hop
// offering SIZE, PIPELINING and HELP but not 8BITMIME, which rejects any
// octet above 127. Every test message must arrive, converted losslessly.
func TestDominoSevenBitHop(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--keywords", "SIZE,PIPELINING,HELP", "--strict-7bit")
	r := startRelay(t, "", "", routeAll(h.Addr))
	names := testMessages(t)
	byMsgID := map[string]string{}
	c := testrelay.Dial(t, r.Addr)
	for _, name := range names {
		content := testrelay.ReadTestdata(t, name)
		id := c.SendID(sender, []string{"postmaster@legacy.example"}, testrelay.BodyParam(content), content)
		byMsgID[messageID(t, content)] = name
		t.Logf("%s queued as %s", name, id)
	}
	c.Quit()
	testrelay.WaitFor(t, fmt.Sprintf("%d messages at the 7-bit hop", len(names)), func() bool {
		return h.count(t) >= len(names) || len(r.LogLines("status=bounced")) > 0
	})
	for _, l := range r.LogLines("status=bounced") {
		t.Errorf("bounced instead of converted: %s", l)
	}
	caps := h.captures(t)
	got := map[string]bool{}
	for _, cp := range caps {
		_, rest := testrelay.StripFirstField(cp.data)
		name, ok := byMsgID[messageID(t, rest)]
		if !ok {
			t.Errorf("capture %s has an unknown Message-ID", cp.sc.ID)
			continue
		}
		got[name] = true
		checkSevenBit(t, name, testrelay.ReadTestdata(t, name), cp)
	}
	for _, name := range names {
		if !got[name] {
			t.Errorf("%s did not arrive", name)
		}
	}
	if len(caps) != len(names) {
		t.Errorf("sink holds %d messages, want %d", len(caps), len(names))
	}
}

// messageID returns the Message-ID field value of a message.
func messageID(t *testing.T, content []byte) string {
	t.Helper()
	for _, l := range strings.Split(string(content), "\r\n") {
		if l == "" {
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Message-ID in %q", testrelay.Clip(content))
	return ""
}

// TestLongLineConvertedFor8BitHop: a line over 998 octets is illegal on
// any hop (RFC 5322 §2.1.1), so even a hop with 8BITMIME gets the leaf
// encoded (DESIGN.md §1), and the content decodes to the original.
func TestLongLineConvertedFor8BitHop(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, "", "", routeAll(h.Addr))
	orig := testrelay.ReadTestdata(t, "long-line-latin1.eml")
	testrelay.SendOne(t, r.Addr, sender, []string{"postmaster@legacy.example"}, orig)
	cp := h.waitCaptures(t, 1)[0]
	_, rest := testrelay.StripFirstField(cp.data)
	for i, l := range bytes.Split(rest, []byte("\r\n")) {
		if len(l) > 998 {
			t.Errorf("line %d has %d octets, over 998", i+1, len(l))
		}
	}
	if d := testrelay.DiffDecoded(orig, rest); len(d) > 0 {
		t.Errorf("content does not decode to the original:\n  %s", strings.Join(d, "\n  "))
	}
}

// TestDeferThenDeliver: the hop answers the first RCPT with 451; Ferry
// retries and the message arrives on the second attempt, exactly once.
func TestDeferThenDeliver(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--reply", "RCPT#1:*=451 4.3.0 try later")
	r := startRelay(t, shortRetry, "", routeAll(h.Addr))
	content := testrelay.ReadTestdata(t, "simple-utf8-french.eml")
	id := testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, content)
	r.WaitLog(t, id, "status=deferred", "451")
	r.WaitLog(t, id, "status=sent")
	r.WaitLog(t, "msg=removed", "id="+id)
	caps := h.captures(t)
	if len(caps) != 1 {
		t.Fatalf("sink holds %d messages, want exactly 1", len(caps))
	}
	if rest := checkReceived(t, caps[0].data, id); !bytes.Equal(rest, content) {
		t.Errorf("arrived changed at offset %d", testrelay.FirstDiff(rest, content))
	}
	if n := len(r.LogLines(id, "status=sent")); n != 1 {
		t.Errorf("%d status=sent lines, want 1", n)
	}
}

// TestPermanentFailureNotRetried: one recipient gets 550 at RCPT, the other
// is accepted: the good one is delivered in one transaction, the bad one
// bounces and is never tried again.
func TestPermanentFailureNotRetried(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--reply", "RCPT:*@bad.example=550 5.1.1 no such user")
	r := startRelay(t, shortRetry, "", routeAll(h.Addr))
	content := testrelay.ReadTestdata(t, "pure-ascii.eml")
	id := testrelay.SendOne(t, r.Addr, sender, []string{"good@example.com", "nobody@bad.example"}, content)
	r.WaitLog(t, id, "nobody@bad.example", "status=bounced", "550")
	r.WaitLog(t, id, "good@example.com", "status=sent")
	r.WaitLog(t, "msg=removed", "id="+id)
	var mine []capture
	for _, cp := range h.captures(t) {
		if cp.sc.From == "<>" {
			t.Logf("a DSN reached the hop: %s to %v", cp.sc.ID, cp.sc.Rcpts)
			continue
		}
		mine = append(mine, cp)
	}
	if len(mine) != 1 {
		t.Fatalf("sink got %d transactions from the sender, want 1", len(mine))
	}
	if got := mine[0].sc.Rcpts; len(got) != 1 || got[0].To != "<good@example.com>" {
		t.Errorf("delivered to %v, want only <good@example.com>", got)
	}
	if n := len(r.LogLines(id, "nobody@bad.example", "status=deferred")); n != 0 {
		t.Errorf("the 550 recipient was deferred %d times", n)
	}
	// The sink logs every refusal it gives: exactly one RCPT for the bad
	// recipient, whatever the transaction.
	if tries := h.LogLines("reject", "stage=RCPT", "nobody@bad.example"); len(tries) != 1 {
		t.Errorf("the hop refused RCPT TO:<nobody@bad.example> %d times, want 1: %q", len(tries), tries)
	}
}

// TestHopDownThenUp: nothing listens at the next hop at first; once a sink
// starts there, the message arrives after a retry.
func TestHopDownThenUp(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	r := startRelay(t, shortRetry, "", routeAll(addr))
	content := testrelay.ReadTestdata(t, "html-and-text-cyrillic.eml")
	id := testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, content)
	r.WaitLog(t, id, "status=deferred")
	h := startSink(t, addr)
	cp := h.waitCaptures(t, 1)[0]
	if rest := checkReceived(t, cp.data, id); !bytes.Equal(rest, content) {
		t.Errorf("arrived changed at offset %d", testrelay.FirstDiff(rest, content))
	}
}

// TestManyMessagesOneConnection: 20 messages sent over one session all
// arrive, over fewer connections to the hop than messages.
func TestManyMessagesOneConnection(t *testing.T) {
	t.Parallel()
	const n = 20
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, "", "", routeAll(h.Addr))
	base := testrelay.ReadTestdata(t, "pure-ascii.eml")
	c := testrelay.Dial(t, r.Addr)
	for i := 0; i < n; i++ {
		c.SendID(sender, []string{"user@example.com"}, "", numbered(base, i))
	}
	c.Quit()
	caps := h.waitCaptures(t, n)
	seqs := map[string]int{}
	ports := map[string]bool{}
	for _, cp := range caps {
		seqs[seqOf(cp.data)]++
		ports[cp.sc.Client] = true
	}
	if len(seqs) != n || len(caps) != n {
		t.Errorf("%d captures with %d distinct messages, want %d", len(caps), len(seqs), n)
	}
	t.Logf("%d messages arrived over %d connections", len(caps), len(ports))
	if len(ports) >= n {
		t.Errorf("%d messages came over %d distinct client ports: no connection reuse", len(caps), len(ports))
	}
}

// numbered returns content with an X-E2E-Seq field on top.
func numbered(content []byte, i int) []byte {
	return append([]byte(fmt.Sprintf("X-E2E-Seq: %d\r\n", i)), content...)
}

// seqOf returns the X-E2E-Seq value of a captured message, "" if none.
func seqOf(data []byte) string {
	for _, l := range strings.Split(string(data), "\r\n") {
		if l == "" {
			break
		}
		if v, ok := strings.CutPrefix(l, "X-E2E-Seq: "); ok {
			return v
		}
	}
	return ""
}

// TestPipeliningOnAndOff: delivery to several recipients works to a hop
// that offers PIPELINING and to one that does not. Both sinks hang up on
// commands sent ahead where RFC 2920 §3.1 forbids it (after EHLO or DATA,
// or at all without PIPELINING), so pipelining to the second hop, or past
// DATA to the first, would show as a "stage=PIPELINING" refusal.
func TestPipeliningOnAndOff(t *testing.T) {
	t.Parallel()
	with := startSink(t, "127.0.0.1:0", "--keywords", "PIPELINING,8BITMIME,SIZE,ENHANCEDSTATUSCODES")
	without := startSink(t, "127.0.0.1:0", "--keywords", "8BITMIME,SIZE,ENHANCEDSTATUSCODES")
	r := startRelay(t, "", "", routeTo("pipe.example", with.Addr), routeTo("nopipe.example", without.Addr))
	content := testrelay.ReadTestdata(t, "simple-utf8-french.eml")
	for _, tc := range []struct {
		domain string
		h      *hop
	}{{"pipe.example", with}, {"nopipe.example", without}} {
		rcpts := []string{"a@" + tc.domain, "b@" + tc.domain, "c@" + tc.domain}
		id := testrelay.SendOne(t, r.Addr, sender, rcpts, content)
		cp := tc.h.waitCaptures(t, 1)[0]
		if rest := checkReceived(t, cp.data, id); !bytes.Equal(rest, content) {
			t.Errorf("%s: arrived changed at offset %d", tc.domain, testrelay.FirstDiff(rest, content))
		}
		if len(cp.sc.Rcpts) != 3 {
			t.Errorf("%s: %d recipients in one transaction (%v), want 3", tc.domain, len(cp.sc.Rcpts), cp.sc.Rcpts)
		}
		if !strings.Contains(cp.sc.MailLine, "BODY=8BITMIME") {
			t.Errorf("%s: MAIL line %q lacks BODY=8BITMIME", tc.domain, cp.sc.MailLine)
		}
		for _, l := range tc.h.LogLines("stage=PIPELINING") {
			t.Errorf("%s: the hop saw commands sent ahead: %s", tc.domain, l)
		}
	}
}

// TestHeloOnlyHop: the hop answers EHLO with 502; Ferry falls back to
// HELO, delivers a 7-bit message unchanged and an 8-bit one converted.
func TestHeloOnlyHop(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--no-esmtp", "--strict-7bit")
	r := startRelay(t, "", "", routeAll(h.Addr))
	ascii := testrelay.ReadTestdata(t, "pure-ascii.eml")
	eight := testrelay.ReadTestdata(t, "simple-utf8-french.eml")
	idASCII := testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, ascii)
	caps := h.waitCaptures(t, 1)
	idEight := testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, eight)
	testrelay.WaitFor(t, "the 8-bit message at the HELO-only hop", func() bool {
		return h.count(t) >= 2 || len(r.LogLines(idEight, "status=bounced")) > 0
	})
	for _, l := range r.LogLines(idEight, "status=bounced") {
		t.Fatalf("bounced instead of converted: %s", l)
	}
	caps = h.captures(t)
	for _, cp := range caps {
		if cp.sc.Protocol != "SMTP" {
			t.Errorf("capture %s: protocol %q, want SMTP (HELO)", cp.sc.ID, cp.sc.Protocol)
		}
		if strings.Contains(cp.sc.MailLine, "=") {
			t.Errorf("capture %s: MAIL line %q has ESMTP parameters after HELO", cp.sc.ID, cp.sc.MailLine)
		}
		field, _ := testrelay.StripFirstField(cp.data)
		switch queueIDFromReceived(string(field)) {
		case idASCII:
			if rest := checkReceived(t, cp.data, idASCII); !bytes.Equal(rest, ascii) {
				t.Errorf("7-bit message arrived changed at offset %d", testrelay.FirstDiff(rest, ascii))
			}
		case idEight:
			checkSevenBit(t, "simple-utf8-french.eml", eight, cp)
		default:
			t.Errorf("capture %s: unknown message", cp.sc.ID)
		}
	}
}

// TestMessageSizeLimit: a message over the listener's max_message_size is
// refused with 552 5.3.4, both when SIZE= announces it and when the content
// exceeds it; the session goes on and a small message still passes.
func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, `
[[listener]]
address = "127.0.0.1:2525"
max_message_size = 10000
`, "", routeAll(h.Addr))
	big := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"), 300)...)
	c := testrelay.Dial(t, r.Addr)
	rep := c.Cmd("MAIL FROM:<%s> SIZE=%d", sender, len(big))
	if rep.Code != 552 || !strings.HasPrefix(rep.Text(), "5.3.4") {
		t.Errorf("MAIL with SIZE=%d over a 10000 limit: %v, want 552 5.3.4", len(big), rep)
	}
	c.Expect(250, c.Cmd("RSET"))
	c.Expect(250, c.Cmd("MAIL FROM:<%s>", sender))
	c.Expect(250, c.Cmd("RCPT TO:<user@example.com>"))
	rep = c.Data(big)
	if rep.Code != 552 || !strings.HasPrefix(rep.Text(), "5.3.4") {
		t.Errorf("%d octets of content over a 10000 limit: %v, want 552 5.3.4", len(big), rep)
	}
	small := testrelay.ReadTestdata(t, "pure-ascii.eml")
	id := c.SendID(sender, []string{"user@example.com"}, "", small)
	c.Quit()
	caps := h.waitCaptures(t, 1)
	r.WaitLog(t, "msg=removed", "id="+id)
	if caps = h.captures(t); len(caps) != 1 {
		t.Fatalf("sink holds %d messages, want only the small one", len(caps))
	}
	if rest := checkReceived(t, caps[0].data, id); !bytes.Equal(rest, small) {
		t.Errorf("small message arrived changed")
	}
}

// TestEHLONameFollowsHostname: with --hostname and no delivery.ehlo_name,
// Ferry must introduce itself to the next hop by that name (config:
// "EHLOName … default Hostname"; the Received field already uses it).
func TestEHLONameFollowsHostname(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, "", "", routeAll(h.Addr))
	testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, testrelay.ReadTestdata(t, "pure-ascii.eml"))
	cp := h.waitCaptures(t, 1)[0]
	if cp.sc.Helo != relayHostname {
		t.Errorf("EHLO name at the hop is %q, want --hostname %q", cp.sc.Helo, relayHostname)
	}
}

// TestRelayDeniedOutsideRelayNetworks: with --relay-network not covering
// loopback, this client may send only to an --accept-domain; any other
// recipient gets 554 5.7.1 (RFC 5321 §3.6.2) and nothing reaches the hop
// for it.
func TestRelayDeniedOutsideRelayNetworks(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0")
	r := startRelayFlags(t, "", "", "--route", routeAll(h.Addr),
		"--relay-network", "192.0.2.0/24", "--accept-domain", "local.example")
	content := testrelay.ReadTestdata(t, "pure-ascii.eml")
	c := testrelay.Dial(t, r.Addr)
	c.Expect(250, c.Cmd("MAIL FROM:<%s>", sender))
	rep := c.Cmd("RCPT TO:<someone@elsewhere.example>")
	if rep.Code != 554 || !strings.HasPrefix(rep.Text(), "5.7.1") {
		t.Errorf("RCPT to a foreign domain from outside the relay networks: %v, want 554 5.7.1", rep)
	}
	c.Expect(250, c.Cmd("RCPT TO:<user@local.example>"))
	id := c.Expect(250, c.Data(content)).Text()
	c.Quit()
	cp := h.waitCaptures(t, 1)[0]
	if got := cp.sc.Rcpts; len(got) != 1 || got[0].To != "<user@local.example>" {
		t.Errorf("delivered to %v, want only <user@local.example> (%s)", got, id)
	}
}
