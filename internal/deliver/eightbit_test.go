package deliver

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/downgrade/downgradetest"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// The parts of mixedMsg: 8-bit text a hop with 8BITMIME takes as it is,
// a line over 998 octets no hop takes, and binary data (NUL, bare CR) that
// needs BINARYMIME.
const (
	mixedText   = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln,\r\ndie Tabelle folgt."
	mixedLong   = "Content-Type: text/csv; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	mixedBinary = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\rdata"
)

var mixedMsg = "From: a@origin.example\r\nSubject: table\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n" +
	"--m\r\n" + mixedText + "\r\n" +
	"--m\r\n" + mixedLong + "caf\xc3\xa9;" + strings.Repeat("cell;", 250) + "\r\nend\r\n" +
	"--m\r\n" + mixedBinary + "\r\n" +
	"--m--\r\n"

// deliverToSink delivers it through the real converter to a sink
// offering keywords, expects it sent, and returns what the sink got and
// the delivery log.
func deliverToSink(t *testing.T, keywords []string, strict7Bit bool, it queue.Item) (sink.Message, *syncBuffer) {
	t.Helper()
	s, rt := startSink(t, sink.Options{Keywords: keywords, Strict7Bit: strict7Bit})
	q := newMemQueue()
	a, logs := testAgent(t, q, rt, func(c *Config) { c.Converter = NewDowngrader(downgrade.Options{TempDir: t.TempDir()}) })
	a.DeliverLease(context.Background(), lease(it))
	q.expect(t, it.Env.ID, 0, queue.Sent, "250")
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages", len(msgs))
	}
	return msgs[0], logs
}

// TestSinkEightBitMIMEHop: a hop that offers 8BITMIME but neither
// CHUNKING nor BINARYMIME gets the message with BODY=8BITMIME over DATA,
// the 8-bit part byte for byte, only the long-line part and the binary
// part encoded, and every leaf decodes to the original octets.
func TestSinkEightBitMIMEHop(t *testing.T) {
	m, logs := deliverToSink(t, []string{"SIZE 10240000", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"}, false, testMessage("EB1", mixedMsg, "x@hop.test"))
	if !strings.Contains(m.MailLine, "BODY=8BITMIME") || m.Chunked {
		t.Errorf("MAIL line %q, chunked %v", m.MailLine, m.Chunked)
	}
	if !bytes.Contains(m.Data, []byte("--m\r\n"+mixedText+"\r\n--m\r\n")) {
		t.Errorf("8-bit part not kept byte for byte:\n%q", m.Data)
	}
	for _, want := range []string{"Content-Type: text/csv; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"} {
		if !bytes.Contains(m.Data, []byte(want)) {
			t.Errorf("no %q in\n%q", want, m.Data)
		}
	}
	if err := downgradetest.Compare8BitMIME([]byte(mixedMsg), m.Data); err != nil {
		t.Errorf("what the hop got: %v", err)
	}
	for _, want := range []string{"plan=\"body=BINARYMIME→8BITMIME converted, DATA",
		"summary=\"part 2 (long lines) 8bit→quoted-printable, part 3 (NUL and bare CR) binary→base64, 1 8-bit part(s) kept,"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestSinkSevenBitHopMixed: the same message to a hop without 8BITMIME
// is pure 7-bit, every 8-bit part encoded, sent without BODY=.
func TestSinkSevenBitHopMixed(t *testing.T) {
	m, logs := deliverToSink(t, []string{"SIZE 10240000", "PIPELINING", "HELP"}, true, testMessage("SB1", mixedMsg, "x@hop.test"))
	if strings.Contains(m.MailLine, "BODY=") {
		t.Errorf("MAIL line %q claims a body type", m.MailLine)
	}
	if err := downgradetest.Compare([]byte(mixedMsg), m.Data); err != nil {
		t.Errorf("what the hop got: %v", err)
	}
	if !strings.Contains(logs.String(), "plan=\"body=BINARYMIME→7BIT converted, DATA") || !strings.Contains(logs.String(), "summary=\"part 1 8bit→quoted-printable, part 2 8bit→quoted-printable, part 3 binary→base64,") {
		t.Errorf("log lacks the 7-bit conversion:\n%s", logs)
	}
}

// TestSinkEightBitMIMESMTPUTF8: a message that goes with SMTPUTF8, with
// UTF-8 in a header address and a line over 998 octets, reaches a hop
// offering 8BITMIME and SMTPUTF8 (no CHUNKING) with its header byte for
// byte: only the long-line part is encoded.
func TestSinkEightBitMIMESMTPUTF8(t *testing.T) {
	head := "From: J\xc3\xb6rg <j\xc3\xb6rg@origin.example>\r\nSubject: gr\xc3\xbc\xc3\x9fe\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	msg := head + "Content-Transfer-Encoding: 8bit\r\n\r\n" + strings.Repeat("K\xc3\xb6ln am Rhein ", 80) + "\r\n"
	it := testMessage("EU1", msg, "x@hop.test")
	it.Env.SMTPUTF8 = true
	m, _ := deliverToSink(t, []string{"SIZE 10240000", "8BITMIME", "SMTPUTF8", "PIPELINING"}, false, it)
	if !strings.Contains(m.MailLine, "BODY=8BITMIME") || !strings.Contains(m.MailLine, "SMTPUTF8") {
		t.Errorf("MAIL line %q", m.MailLine)
	}
	if !bytes.HasPrefix(m.Data, []byte(head+"Content-Transfer-Encoding: quoted-printable\r\n\r\n")) {
		t.Errorf("header changed:\n%q", m.Data)
	}
	if err := downgradetest.Compare8BitMIME([]byte(msg), m.Data); err != nil {
		t.Errorf("what the hop got: %v", err)
	}
}

// TestUTF8HeaderNotDeclared: a message with UTF-8 in a header address,
// submitted without SMTPUTF8, that must be converted (a line over 998
// octets) fails 5.6.9, the address having no 7-bit form; the reply names
// the missing parameter when the hop offers SMTPUTF8, else the hop.
func TestUTF8HeaderNotDeclared(t *testing.T) {
	msg := "From: J\xc3\xb6rg <j\xc3\xb6rg@origin.example>\r\nSubject: hi\r\n\r\n" + strings.Repeat("long ", 300) + "\r\n"
	for _, tt := range []struct {
		keywords []string
		want     string
	}{
		{[]string{"SIZE 10240000", "8BITMIME", "SMTPUTF8"}, "not submitted with SMTPUTF8"},
		{[]string{"SIZE 10240000", "8BITMIME"}, "next hop does not support SMTPUTF8"},
	} {
		s, rt := startSink(t, sink.Options{Keywords: tt.keywords})
		q := newMemQueue()
		a, _ := testAgent(t, q, rt, func(c *Config) { c.Converter = NewDowngrader(downgrade.Options{TempDir: t.TempDir()}) })
		it := testMessage("UH1", msg, "x@hop.test")
		a.DeliverLease(context.Background(), lease(it))
		q.expect(t, "UH1", 0, queue.Failed, "554 5.6.9")
		if r := q.last(t, "UH1", 0).Reply.String(); !strings.Contains(r, tt.want) {
			t.Errorf("hop %v: reply %q lacks %q", tt.keywords, r, tt.want)
		}
		if n := len(s.Messages()); n != 0 {
			t.Errorf("hop %v got %d messages", tt.keywords, n)
		}
	}
}

// TestConvertedSevenBitLabel: content converted for an 8BITMIME hop that
// comes out 7-bit (its only 8-bit part re-encoded) goes without
// BODY=8BITMIME when it was prepared before MAIL (a hop with SIZE), so the
// label says what the content is; streamed to a hop without SIZE, the
// plan's BODY=8BITMIME stays (RFC 6152 allows 7-bit content under it).
func TestConvertedSevenBitLabel(t *testing.T) {
	msg := "Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.Repeat("K\xc3\xb6ln ", 300) + "\r\n"
	for _, tt := range []struct {
		keywords []string
		body     bool
	}{
		{[]string{"SIZE 10240000", "8BITMIME"}, false},
		{[]string{"8BITMIME"}, true},
	} {
		it := testMessage("SL1", msg, "x@hop.test")
		it.Env.Body = smtp.Body8BitMIME
		m, _ := deliverToSink(t, tt.keywords, false, it)
		if got := strings.Contains(m.MailLine, "BODY=8BITMIME"); got != tt.body {
			t.Errorf("hop %v: MAIL line %q, want BODY=8BITMIME %v", tt.keywords, m.MailLine, tt.body)
		}
		if testrelay.Has8Bit(m.Data) {
			t.Errorf("hop %v: 8-bit octets in content that was converted whole", tt.keywords)
		}
	}
}
