package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestBareNewlinesAndSmuggling: content with a bare LF or bare CR next to a
// "." line must neither end the message early at Ferry (only CRLF.CRLF
// ends DATA) nor reach the next hop as an end of data: Ferry normalises
// the bare newline and must then dot-stuff the "." line it created (RFC
// 5321 §4.5.2), or the text after it becomes commands at the hop (SMTP
// smuggling). Nothing Ferry sends contains a bare CR or LF (DESIGN.md §4).
func TestBareNewlinesAndSmuggling(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, "", "", routeAll(h.Addr))
	smuggled := "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n"
	variants := []struct{ name, sep string }{
		{"LF . CRLF", "\n.\r\n"},
		{"CR . CRLF", "\r.\r\n"},
		{"CRLF . LF", "\r\n.\n"},
		{"LF . LF", "\n.\n"},
	}
	c := testrelay.Dial(t, r.Addr)
	for i, v := range variants {
		content := fmt.Sprintf("From: <%s>\r\nSubject: bare newline %d\r\nX-E2E-Seq: %d\r\n\r\nfirst line%s%s", sender, i, i, v.sep, smuggled)
		c.SendID(sender, []string{"user@example.com"}, "", []byte(content))
	}
	c.Quit()
	testrelay.WaitFor(t, fmt.Sprintf("%d messages at the hop", len(variants)), func() bool { return h.count(t) >= len(variants) })
	caps := h.captures(t)
	got := map[string]bool{}
	for _, cp := range caps {
		if cp.sc.From != "<"+sender+">" || len(cp.sc.Rcpts) != 1 || cp.sc.Rcpts[0].To != "<user@example.com>" {
			t.Errorf("smuggled transaction reached the hop: from %s to %v: %q", cp.sc.From, cp.sc.Rcpts, testrelay.Clip(cp.data))
			continue
		}
		seq := seqOf(cp.data)
		got[seq] = true
		for _, p := range testrelay.Problems7Bit(cp.data) {
			if strings.Contains(p, "bare") {
				t.Errorf("message %s: %s", seq, p)
			}
		}
		if !bytes.Contains(cp.data, []byte("\r\nMAIL FROM:<evil@attacker.example>\r\n")) ||
			!bytes.HasSuffix(cp.data, []byte("\r\nsmuggled\r\n")) {
			t.Errorf("message %s lost the text after the bare newline: %q", seq, cp.data)
		}
	}
	for i, v := range variants {
		if !got[fmt.Sprint(i)] {
			t.Errorf("%s: message %d did not arrive whole", v.name, i)
		}
	}
	if len(caps) != len(variants) {
		t.Errorf("hop holds %d messages, want %d", len(caps), len(variants))
	}
	for _, l := range h.LogLines("reject") {
		t.Errorf("the hop refused something: %s", l)
	}
}

// largeMessage is a multi-megabyte 8-bit text message.
func largeMessage(lines int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Relay Tester <tester@example.net>\r\nTo: user@example.com\r\nSubject: large\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n" +
		"Message-ID: <e2e-large@example.net>\r\n\r\n")
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&b, "%06d Voilà l'été : déjà réglé, à bientôt. Ça marche très bien.\r\n", i)
		if i%1000 == 999 {
			b.WriteString(".leading dot\r\n")
		}
	}
	return b.Bytes()
}

// TestLargeMessage: a 2.5 MB 8-bit message passes unchanged to a hop with
// 8BITMIME and arrives converted, decoding to the same octets, at a hop
// without it.
func TestLargeMessage(t *testing.T) {
	t.Parallel()
	full := startSink(t, "127.0.0.1:0")
	domino := startSink(t, "127.0.0.1:0", "--keywords", "SIZE,PIPELINING,HELP", "--strict-7bit")
	r := startRelay(t, "", "", routeTo("full.example", full.Addr), routeTo("domino.example", domino.Addr))
	content := largeMessage(36000)
	c := testrelay.Dial(t, r.Addr)
	idFull := c.SendID(sender, []string{"user@full.example"}, "BODY=8BITMIME", content)
	c.SendID(sender, []string{"user@domino.example"}, "BODY=8BITMIME", content)
	c.Quit()
	cp := full.waitCaptures(t, 1)[0]
	if rest := checkReceived(t, cp.data, idFull); !bytes.Equal(rest, content) {
		t.Errorf("%d-octet message arrived changed (%d octets, first difference at %d)", len(content), len(rest), testrelay.FirstDiff(rest, content))
	}
	cp = domino.waitCaptures(t, 1)[0]
	checkSevenBit(t, fmt.Sprintf("%d-octet message", len(content)), content, cp)
}

// TestSMTPUTF8 (RFC 6531): to a hop without SMTPUTF8, a UTF-8 domain with
// an ASCII local part is sent as its A-label (lossless), while a UTF-8
// local part fails at once with 5.6.7 (RFC 6531 §3.2, DESIGN.md §1) instead
// of being retried; a hop with SMTPUTF8 gets both as they are.
func TestSMTPUTF8(t *testing.T) {
	t.Parallel()
	ascii := startSink(t, "127.0.0.1:0", "--keywords", "8BITMIME,PIPELINING,SIZE,ENHANCEDSTATUSCODES")
	utf8 := startSink(t, "127.0.0.1:0")
	r := startRelay(t, shortRetry, "",
		routeTo("bücher.example", ascii.Addr), routeTo("example.com", ascii.Addr), routeTo("*", utf8.Addr))
	content := testrelay.ReadTestdata(t, "simple-utf8-french.eml")

	idDomain := sendUTF8(t, r.Addr, "user@bücher.example", content)
	cp := ascii.waitCaptures(t, 1)[0]
	if got := cp.sc.Rcpts; len(got) != 1 || got[0].To != "<user@xn--bcher-kva.example>" {
		t.Errorf("UTF-8 domain arrived as %v, want <user@xn--bcher-kva.example>", got)
	}
	if strings.Contains(strings.ToUpper(cp.sc.MailLine), "SMTPUTF8") || cp.sc.Params.SMTPUTF8 {
		t.Errorf("MAIL line %q asks for SMTPUTF8 at a hop that did not offer it", cp.sc.MailLine)
	}
	if rest := checkReceived(t, cp.data, idDomain); !bytes.Equal(rest, content) {
		t.Errorf("content arrived changed at offset %d", testrelay.FirstDiff(rest, content))
	}

	idLocal := sendUTF8(t, r.Addr, "jörg@example.com", content)
	line := r.WaitLog(t, idLocal, "status=")
	if !strings.Contains(line, "status=bounced") || !strings.Contains(line, "5.6.7") {
		t.Errorf("UTF-8 local part to a hop without SMTPUTF8: %s; want status=bounced with 5.6.7", line)
	}

	// The 5.6.7 failure report to the sender also arrives at this hop.
	sendUTF8(t, r.Addr, "jörg@bücher.other", content)
	testrelay.WaitFor(t, "the SMTPUTF8 message", func() bool { return len(nonReports(utf8.captures(t))) >= 1 })
	cp = nonReports(utf8.captures(t))[0]
	if got := cp.sc.Rcpts; len(got) != 1 || got[0].To != "<jörg@bücher.other>" {
		t.Errorf("at the SMTPUTF8 hop the recipient is %v, want <jörg@bücher.other>", got)
	}
	if !cp.sc.Params.SMTPUTF8 {
		t.Errorf("MAIL line %q lacks SMTPUTF8 for a UTF-8 recipient", cp.sc.MailLine)
	}
	if n := ascii.count(t); n != 1 {
		t.Errorf("the hop without SMTPUTF8 holds %d messages, want 1", n)
	}
}

// sendUTF8 sends content with SMTPUTF8 to one recipient.
func sendUTF8(t *testing.T, addr, rcpt string, content []byte) string {
	t.Helper()
	c := testrelay.Dial(t, addr)
	id := c.SendID(sender, []string{rcpt}, "BODY=8BITMIME SMTPUTF8", content)
	c.Quit()
	return id
}

// TestUndeclared8Bit: a client that sends 8-bit content without
// BODY=8BITMIME (common in practice) still must not make Ferry send an
// octet above 127 to a hop without 8BITMIME (RFC 6152 §3): Ferry judges
// the content, not the label.
func TestUndeclared8Bit(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--keywords", "SIZE,PIPELINING,HELP", "--strict-7bit")
	r := startRelay(t, "", "", routeAll(h.Addr))
	content := testrelay.ReadTestdata(t, "html-and-text-cyrillic.eml")
	c := testrelay.Dial(t, r.Addr)
	id := c.SendID(sender, []string{"user@example.com"}, "", content)
	c.Quit()
	testrelay.WaitFor(t, "the message at the 7-bit hop", func() bool {
		return h.count(t) >= 1 || len(r.LogLines(id, "status=bounced")) > 0
	})
	for _, l := range r.LogLines(id, "status=bounced") {
		t.Fatalf("bounced instead of converted: %s", l)
	}
	checkSevenBit(t, "undeclared 8-bit", content, h.captures(t)[0])
}

// nonReports leaves out the captures sent with the null reverse path
// (Ferry's delivery status notifications).
func nonReports(caps []capture) []capture {
	var out []capture
	for _, c := range caps {
		if c.sc.From != "<>" {
			out = append(out, c)
		}
	}
	return out
}
