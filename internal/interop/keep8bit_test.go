package interop

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/postfixtest"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// keptPart is the 8-bit part of the message of TestFerryToPostfixKeeps8BitParts.
const keptPart = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln, die Tabelle folgt."

// TestFerryToPostfixKeeps8BitParts: a message with an 8-bit part and a
// part with a line over 998 octets goes to a real Postfix that offers
// 8BITMIME with BODY=8BITMIME; only the long-line part is encoded, the
// 8-bit part arrives byte for byte, and both decode to the original.
func TestFerryToPostfixKeeps8BitParts(t *testing.T) {
	pf := postfixtest.Start(t, postfixtest.Options{ExtraMain: debugPeer})
	f := startFerry(t, routeTo(t, "*", pf.Addr()))
	data := []byte("From: a@example.org\r\nTo: b@example.net\r\nSubject: table\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n" +
		"--m\r\n" + keptPart + "\r\n" +
		"--m\r\nContent-Type: text/csv; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9;" + strings.Repeat("cell;", 250) + "\r\nend\r\n" +
		"--m--\r\n")
	m := testMessage{name: "mixed-long-line", data: data}
	relayAll(t, f.Addr, []testMessage{m})
	rcpt := m.rcpt(destDomain)
	got := byRecipient(t, pf.WaitMessages(1, captureLimit))
	c, ok := got[rcpt]
	if !ok {
		t.Fatalf("nothing captured for %s", rcpt)
	}
	content, _ := testrelay.StripTrace(c.CRLF())
	if !bytes.Contains(content, []byte("--m\r\n"+keptPart+"\r\n--m\r\n")) {
		t.Errorf("the 8-bit part did not arrive byte for byte:\n%s", content)
	}
	if !bytes.Contains(content, []byte("Content-Type: text/csv; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n")) {
		t.Errorf("the long-line part is not quoted-printable:\n%s", content)
	}
	testrelay.CheckSameDecoded(t, m.name, m.data, content)
	testrelay.CheckLines(t, m.name, content)
	log := pf.WaitLog(captureLimit, func(l string) bool { return len(mailFromLines(l)) >= 1 })
	if mail := mailFromFor(log, rcpt); !strings.Contains(strings.ToUpper(mail), "BODY=8BITMIME") {
		t.Errorf("Postfix received %q, want BODY=8BITMIME", mail)
	}
	line := f.WaitLog(t, "to=<"+rcpt+">", "status=sent")
	if !strings.Contains(line, "body=8BITMIME→8BITMIME converted") {
		t.Errorf("Ferry's delivery log: %s", line)
	}
	if conv := f.LogLines(queueID(line) + ": converted for "); len(conv) != 1 || !strings.Contains(conv[0], "part 2 (long lines) 8bit→quoted-printable, 1 8-bit part(s) kept") {
		t.Errorf("Ferry's conversion log: %q", conv)
	}
}
