package interop

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/postfixtest"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// sendBDAT runs one transaction with the content in BDAT chunks of at
// most chunk octets (RFC 3030 §2), with the given MAIL parameters, and
// returns the reply to the last chunk.
func sendBDAT(t *testing.T, c *testrelay.Client, from, rcpt, params string, content []byte, chunk int) testrelay.Reply {
	t.Helper()
	c.Expect(250, c.Cmd("MAIL FROM:<%s> %s", from, params))
	c.Expect(250, c.Cmd("RCPT TO:<%s>", rcpt))
	for n := 0; n < 10000; n++ {
		size := min(chunk, len(content))
		last := size == len(content)
		cmd := fmt.Sprintf("BDAT %d", size)
		if last {
			cmd += " LAST"
		}
		c.Write(append([]byte(cmd+"\r\n"), content[:size]...))
		r := c.Expect(250, c.Read())
		content = content[size:]
		if last {
			return r
		}
	}
	t.Fatal("more than 10000 BDAT chunks")
	return testrelay.Reply{}
}

// binaryMessage is a multipart message with a 7-bit text part and a binary
// attachment of n random octets (every value, bare CR and LF, NUL, long
// "lines"), labelled CTE binary as RFC 3030 allows with BODY=BINARYMIME.
func binaryMessage(n int) ([]byte, []byte) {
	rng := rand.New(rand.NewPCG(4, 5))
	blob := make([]byte, n)
	for i := range blob {
		blob[i] = byte(rng.UintN(256))
	}
	// Make sure the awkward cases are there whatever the seed.
	copy(blob, "\x00\r\n.\r\n\n.\n\r\rFrom x\r\n")
	var b bytes.Buffer
	b.WriteString("From: Relay Tester <tester@example.net>\r\nTo: bin@dest.test\r\n" +
		"Date: Mon, 02 Sep 2002 09:30:00 +0200\r\nSubject: binary attachment\r\n" +
		"Message-ID: <interop-binary@example.net>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"bin-b\"\r\n\r\n" +
		"--bin-b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe attachment is binary.\r\n" +
		"--bin-b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n")
	b.Write(blob)
	b.WriteString("\r\n--bin-b--\r\n")
	return b.Bytes(), blob
}

// TestBinaryToPostfix sends a BODY=BINARYMIME message with BDAT into
// Ferry and has Ferry relay it to a real Postfix, which offers CHUNKING
// but not BINARYMIME (and, in the second case, not 8BITMIME either). The
// binary leaf must be converted (RFC 3030 §3, DESIGN.md §1) and arrive as
// valid 7-bit MIME whose attachment decodes to exactly the original
// octets.
func TestBinaryToPostfix(t *testing.T) {
	msg, blob := binaryMessage(300 << 10)
	for _, tc := range []struct {
		name    string
		discard []string
	}{
		{"8bitmime", nil},
		{"7bit", []string{"8bitmime"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pf := postfixtest.Start(t, postfixtest.Options{DiscardEHLOKeywords: tc.discard, ExtraMain: debugPeer})
			f := startFerry(t, routeTo(t, "*", pf.Addr()))
			c := testrelay.Dial(t, f.Addr)
			if !strings.Contains(strings.Join(c.EHLO.Lines, " "), "BINARYMIME") {
				t.Fatalf("Ferry does not offer BINARYMIME: %v", c.EHLO)
			}
			sendBDAT(t, c, testSender, "bin@dest.test", "BODY=BINARYMIME", msg, 64<<10)
			c.Quit()
			got := pf.WaitMessages(1, captureLimit)
			data := got[0].CRLF()
			testrelay.Check7Bit(t, "binary", data)
			content, _ := testrelay.StripTrace(data)
			testrelay.CheckSameDecoded(t, "binary", msg, content)
			es, err := testrelay.DecodeEntities(content)
			if err != nil || len(es) != 3 || !bytes.Equal(es[2].Body, blob) {
				t.Errorf("the attachment does not decode to the original %d octets (err %v)", len(blob), err)
			}
			mail := mailFromFor(pf.WaitLog(captureLimit, func(l string) bool { return mailFromFor(l, "bin@dest.test") != "" }), "bin@dest.test")
			if strings.Contains(strings.ToUpper(mail), "BODY=") {
				t.Errorf("Postfix received %q for converted, 7-bit content; want no BODY=", mail)
			}
			line := f.WaitLog(t, "to=<bin@dest.test>", "status=")
			if !containsAll(line, []string{"status=sent", "converted"}) {
				t.Errorf("Ferry's delivery log: %s", line)
			}
		})
	}
}

// TestSMTPUTF8ToPostfix relays an internationalised message through Ferry
// to a real Postfix (RFC 6531): with SMTPUTF8 offered, the UTF-8 mailbox
// arrives as it was sent; with SMTPUTF8 discarded, a message whose only
// non-ASCII is a domain arrives with the domain in A-labels (DESIGN.md §1,
// "A-label the domains when that is lossless"), and one with a UTF-8 local
// part is refused at once with 5.6.7 rather than damaged.
func TestSMTPUTF8ToPostfix(t *testing.T) {
	body := []byte("From: <tester@example.net>\r\nTo: <user@dest.test>\r\nSubject: idn\r\n" +
		"Message-ID: <interop-idn@example.net>\r\n\r\nASCII body.\r\n")
	t.Run("offered", func(t *testing.T) {
		pf := postfixtest.Start(t, postfixtest.Options{})
		f := startFerry(t, routeTo(t, "*", pf.Addr()))
		c := testrelay.Dial(t, f.Addr)
		c.Send(testSender, []string{"josé@bücher.test"}, "SMTPUTF8", body)
		c.Quit()
		got := pf.WaitMessages(1, captureLimit)
		if r := got[0].Recipients; len(r) != 1 || r[0] != "josé@bücher.test" {
			t.Errorf("Postfix delivered to %q, want josé@bücher.test", r)
		}
		if content, _ := testrelay.StripTrace(got[0].CRLF()); !bytes.Equal(content, body) {
			t.Errorf("content changed:\n%s", content)
		}
		if l := f.WaitLog(t, "status="); !containsAll(l, []string{"status=sent", "smtputf8"}) {
			t.Errorf("Ferry's delivery log: %s", l)
		}
	})
	t.Run("discarded", func(t *testing.T) {
		pf := postfixtest.Start(t, postfixtest.Options{DiscardEHLOKeywords: []string{"smtputf8"}})
		f := startFerry(t, routeTo(t, "*", pf.Addr()))
		c := testrelay.Dial(t, f.Addr)
		c.Send(testSender, []string{"user@bücher.test", "josé@dest.test"}, "SMTPUTF8", body)
		c.Quit()
		got := waitRecipients(t, pf, 1) // the 5.6.7 failure report comes here too
		if r := got[0].Recipients; len(r) != 1 || r[0] != "user@xn--bcher-kva.test" {
			t.Errorf("Postfix delivered to %q, want user@xn--bcher-kva.test (A-label)", r)
		}
		if content, _ := testrelay.StripTrace(got[0].CRLF()); !bytes.Equal(content, body) {
			t.Errorf("content changed:\n%s", content)
		}
		l := f.WaitLog(t, "to=<josé@dest.test>", "status=")
		if !containsAll(l, []string{"status=bounced", "5.6.7"}) {
			t.Errorf("UTF-8 local part to a hop without SMTPUTF8: want bounced with 5.6.7, got: %s", l)
		}
		if n := len(originals(pf.Messages())); n != 1 {
			t.Errorf("Postfix captured %d messages, want 1", n)
		}
	})
	t.Run("8bitmime-discarded", func(t *testing.T) {
		// Postfix offers SMTPUTF8 but not 8BITMIME. A message whose From
		// field holds a UTF-8 local part cannot become 7-bit (RFC 2047
		// §5 allows no encoded-word in an addr-spec), so it must not be
		// sent; Ferry bounces it, and its reply must say why. It must
		// not claim the hop lacks SMTPUTF8: it offers SMTPUTF8, and an
		// operator reading "does not support SMTPUTF8" looks in the
		// wrong place.
		pf := postfixtest.Start(t, postfixtest.Options{DiscardEHLOKeywords: []string{"8bitmime"}, ExtraMain: debugPeer})
		f := startFerry(t, routeTo(t, "*", pf.Addr()))
		utf8Header := []byte("From: José <josé@example.net>\r\nTo: <user@dest.test>\r\nSubject: déjà\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nVoilà.\r\n")
		c := testrelay.Dial(t, f.Addr)
		c.Send(testSender, []string{"user@dest.test"}, "SMTPUTF8 BODY=8BITMIME", utf8Header)
		c.Quit()
		l := f.WaitLog(t, "to=<user@dest.test>", "status=")
		if !containsAll(l, []string{"status=bounced", " 5.6."}) {
			t.Errorf("want a bounce with 5.6.x, got: %s", l)
		}
		if strings.Contains(l, "does not support SMTPUTF8") {
			t.Errorf("BUG: the bounce blames SMTPUTF8, which this hop offers; it lacks 8BITMIME (internal/deliver/transaction.go:313 maps every converter 5.6.9 to ReplyUTF8Headers): %s", l)
		}
		for _, m := range mailFromLines(pf.Log()) {
			if strings.Contains(strings.ToUpper(m), "BODY=8BITMIME") {
				t.Errorf("Ferry sent %q to a hop without 8BITMIME", m)
			}
		}
		if n := len(originals(pf.Messages())); n != 0 {
			t.Errorf("Postfix captured %d messages, want none", n)
		}
	})
}
