package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// quarterEightBit is an 8-bit text message of about n octets with one
// octet in four above 127: converted to quoted-printable it grows by half.
func quarterEightBit(n int) []byte {
	var b strings.Builder
	b.WriteString("From: <" + sender + ">\r\nTo: <user@example.com>\r\nSubject: size\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for b.Len() < n {
		b.WriteString(strings.Repeat("abc\xe9", 18) + "\r\n")
	}
	return []byte(b.String())
}

// TestConvertedTooBigForHop: a 7-bit hop offering SIZE 18000 and an 8-bit
// message of 15000 octets, which fits as stored and not once converted
// (about 22800). Ferry fails it itself, before MAIL, with 552 5.3.4 saying
// that the conversion made it too large, and the failure DSN carries
// Status 5.3.4 and that diagnostic. A smaller message goes through with
// SIZE= exactly the size of what the hop received (Ferry's Received field
// and the conversion included).
func TestConvertedTooBigForHop(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--keywords", "PIPELINING,SIZE,ENHANCEDSTATUSCODES", "--size", "18000")
	back := startSink(t, "127.0.0.1:0") // the sender's domain: the report goes here
	r := startRelay(t, "", "", routeTo("example.net", back.Addr), routeAll(h.Addr))

	big := dsnSession(t, r.Addr, "MAIL FROM:<"+sender+"> BODY=8BITMIME", []string{"RCPT TO:<user@example.com>"}, quarterEightBit(15000))
	line := r.WaitLog(t, "id="+big, "status=bounced")
	for _, want := range []string{"after conversion exceeds the next hop's SIZE 18000", "552 5.3.4 Message size exceeds fixed maximum message size", "the next hop's limit is 18000"} {
		if !strings.Contains(line, want) {
			t.Errorf("delivery line lacks %q: %s", want, line)
		}
	}
	back.waitCaptures(t, 1)
	reports := reportsAt(t, back)
	if len(reports) != 1 {
		t.Fatalf("%d reports, want 1", len(reports))
	}
	rcpt := parseReport(t, reports[0].data).status[1]
	if got := rcpt.Get("Status"); got != "5.3.4" {
		t.Errorf("Status %q, want 5.3.4", got)
	}
	if d := rcpt.Get("Diagnostic-Code"); !strings.Contains(d, "after conversion") || !strings.Contains(d, "limit is 18000") {
		t.Errorf("Diagnostic-Code %q does not say the conversion made it too large", d)
	}
	if m := rcpt.Get("Remote-Mta"); m != "" {
		t.Errorf("Remote-MTA %q: the hop never saw the message", m)
	}

	small := dsnSession(t, r.Addr, "MAIL FROM:<"+sender+"> BODY=8BITMIME", []string{"RCPT TO:<user@example.com>"}, quarterEightBit(9000))
	r.WaitLog(t, "id="+small, "status=sent")
	caps := h.waitCaptures(t, 1)
	if len(caps) != 1 {
		t.Fatalf("%d messages at the hop, want only the small one", len(caps))
	}
	c := caps[0]
	if c.sc.Params.Size != int64(len(c.data)) || !strings.Contains(c.sc.MailLine, "SIZE="+strconv.Itoa(len(c.data))) {
		t.Errorf("MAIL %q (SIZE=%d) for %d octets received", c.sc.MailLine, c.sc.Params.Size, len(c.data))
	}
	if !strings.HasPrefix(string(c.data), "Received: ") {
		t.Errorf("the hop's copy does not start with Ferry's Received field")
	}
}
