package interop

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/postfixtest"
	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// startSink runs an in-process sink (a next hop for Ferry) and closes it
// when the test ends.
func startSink(t *testing.T, opts sink.Options) *sink.Sink {
	t.Helper()
	s, err := sink.Start(opts)
	if err != nil {
		t.Fatalf("starting sink: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing sink: %v", err)
		}
	})
	return s
}

// waitSink waits for n messages at s, failing the test after captureLimit.
func waitSink(t *testing.T, s *sink.Sink, n int) map[string]sink.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), captureLimit)
	defer cancel()
	msgs, err := s.Wait(ctx, n)
	if err != nil {
		t.Fatalf("sink %s: %v", s.Addr(), err)
	}
	out := map[string]sink.Message{}
	for _, m := range msgs {
		if len(m.Envelope.Rcpts) != 1 {
			t.Errorf("sink %s: message %s for %d recipients, want 1", s.Addr(), m.ID, len(m.Envelope.Rcpts))
			continue
		}
		rcpt := m.Envelope.Rcpts[0].Addr.Address()
		if _, dup := out[rcpt]; dup {
			t.Errorf("sink %s: message for %s arrived twice", s.Addr(), rcpt)
		}
		out[rcpt] = m
	}
	return out
}

// TestPostfixToFerry has a real Postfix relay into Ferry (Postfix's
// relayhost is Ferry's listener), and Ferry route by domain to two sinks:
// one offering 8BITMIME ("plain.test") and one playing a 7-bit-only hop
// that rejects 8-bit content sent without BODY=8BITMIME ("domino.test").
// A message injected into Postfix over SMTP must arrive at the first sink
// with its content unchanged (trace fields aside), and an 8-bit one at the
// second converted to 7-bit MIME that decodes to the original.
func TestPostfixToFerry(t *testing.T) {
	plain := startSink(t, sink.Options{Hostname: "plain.sink.test"})
	domino := startSink(t, sink.Options{
		Hostname:   "domino.sink.test",
		Keywords:   []string{"SIZE 10240000", "PIPELINING", "HELP"},
		Strict7Bit: true,
	})
	f := startFerry(t, routeTo(t, "plain.test", plain.Addr()), routeTo(t, "domino.test", domino.Addr()))
	pf := postfixtest.Start(t, postfixtest.Options{Mode: postfixtest.ModeRelay, RelayHost: f.Addr})

	all := loadMessages(t)
	var msgs []testMessage
	for _, m := range all {
		// Postfix's smtp client folds lines over smtp_line_length_limit
		// (998) itself, so a long-line message does not reach Ferry as
		// it was sent; it is tested Ferry → Postfix instead.
		if testrelay.LongestLine(m.data) <= testrelay.MaxLine {
			msgs = append(msgs, m)
		}
	}
	var eightBit []testMessage
	c := testrelay.Dial(t, pf.Addr())
	for _, m := range msgs {
		c.Send(testSender, []string{m.rcpt("plain.test")}, testrelay.BodyParam(m.data), m.data)
		if testrelay.Has8Bit(m.data) {
			c.Send(testSender, []string{m.rcpt("domino.test")}, testrelay.BodyParam(m.data), m.data)
			eightBit = append(eightBit, m)
		}
	}
	c.Quit()

	got := waitSink(t, plain, len(msgs))
	for _, m := range msgs {
		rcpt := m.rcpt("plain.test")
		g, ok := got[rcpt]
		if !ok {
			t.Errorf("%s: nothing arrived for %s", m.name, rcpt)
			continue
		}
		if from := g.Envelope.From.Address(); from != testSender {
			t.Errorf("%s: envelope sender %q, want %q", m.name, from, testSender)
		}
		content, received := testrelay.StripTrace(g.Data)
		if received < 2 {
			t.Errorf("%s: %d Received fields, want Postfix's and Ferry's:\n%s", m.name, received, testrelay.Clip(g.Data))
		}
		if !bytes.Equal(content, m.data) {
			t.Errorf("%s: content changed on the way Postfix → Ferry → sink\ngot:\n%s\nwant:\n%s", m.name, content, m.data)
		}
		if want := testrelay.Has8Bit(m.data); want != strings.Contains(strings.ToUpper(g.MailLine), "BODY=8BITMIME") {
			t.Errorf("%s: Ferry sent %q for content with 8-bit octets: %v", m.name, g.MailLine, want)
		}
		if !strings.Contains(string(g.Data), "by ferry.test") {
			t.Errorf("%s: no Received field of Ferry's (\"by ferry.test\"):\n%s", m.name, testrelay.Clip(g.Data))
		}
	}

	gotDomino := waitSink(t, domino, len(eightBit))
	for _, m := range eightBit {
		rcpt := m.rcpt("domino.test")
		g, ok := gotDomino[rcpt]
		if !ok {
			t.Errorf("%s: nothing arrived for %s", m.name, rcpt)
			continue
		}
		if strings.Contains(strings.ToUpper(g.MailLine), "BODY=8BITMIME") {
			t.Errorf("%s: Ferry sent %q to a hop without 8BITMIME", m.name, g.MailLine)
		}
		testrelay.Check7Bit(t, m.name, g.Data)
		content, _ := testrelay.StripTrace(g.Data)
		testrelay.CheckSameDecoded(t, m.name, m.data, content)
		line := f.WaitLog(t, "to=<"+rcpt+">", "status=sent")
		if !strings.Contains(line, "→7BIT converted") {
			t.Errorf("%s: Ferry's delivery log does not show the conversion: %s", m.name, line)
		}
	}
	if n := len(domino.Messages()); n != len(eightBit) {
		t.Errorf("the 7-bit sink received %d messages, want %d", n, len(eightBit))
	}
	relayed := func(l string) bool { return strings.Contains(l, "relay=127.0.0.1[127.0.0.1]") }
	if log := pf.WaitLog(captureLimit, relayed); !relayed(log) {
		t.Errorf("Postfix's log shows no relaying to Ferry:\n%s", log)
	}
}

// TestPostfixToFerryDSNParameters checks that the DSN parameters of RFC
// 3461 survive Postfix → Ferry → next hop when every hop offers DSN: RET
// and ENVID on MAIL (§4.3, §4.4), NOTIFY and ORCPT on RCPT (§4.1, §4.2).
func TestPostfixToFerryDSNParameters(t *testing.T) {
	plain := startSink(t, sink.Options{Hostname: "plain.sink.test"})
	f := startFerry(t, routeTo(t, "*", plain.Addr()))
	pf := postfixtest.Start(t, postfixtest.Options{Mode: postfixtest.ModeRelay, RelayHost: f.Addr})
	msg := testrelay.ReadTestdata(t, "pure-ascii.eml")

	c := testrelay.Dial(t, pf.Addr())
	c.Expect(250, c.Cmd("MAIL FROM:<%s> RET=HDRS ENVID=interop+2Bdsn-1", testSender))
	c.Expect(250, c.Cmd("RCPT TO:<dsn@plain.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;original+2Brcpt@plain.test"))
	c.Expect(354, c.Cmd("DATA"))
	c.Write(testrelay.DotStuff(msg))
	c.Expect(250, c.Read())
	c.Quit()

	got := waitSink(t, plain, 1)
	g, ok := got["dsn@plain.test"]
	if !ok {
		t.Fatalf("nothing arrived for dsn@plain.test: %v", got)
	}
	env := g.Envelope
	if env.Ret != smtp.ReturnHeaders || env.EnvID != "interop+dsn-1" {
		t.Errorf("MAIL parameters arrived as RET=%v ENVID=%q (line %q), want RET=HDRS ENVID=interop+dsn-1", env.Ret, env.EnvID, g.MailLine)
	}
	r := env.Rcpts[0]
	if r.Notify != smtp.NotifySuccess|smtp.NotifyDelay || r.ORcpt != "rfc822;original+rcpt@plain.test" {
		t.Errorf("RCPT parameters arrived as NOTIFY=%v ORCPT=%q (lines %q), want NOTIFY=SUCCESS,DELAY ORCPT=rfc822;original+rcpt@plain.test", r.Notify, r.ORcpt, g.RcptLines)
	}
	if content, _ := testrelay.StripTrace(g.Data); !bytes.Equal(content, msg) {
		t.Errorf("content changed:\n%s", content)
	}
}
