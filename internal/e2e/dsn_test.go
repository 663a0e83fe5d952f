package e2e

import (
	"bufio"
	"bytes"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// dsnSession sends one message with raw MAIL and RCPT lines (so that DSN
// parameters can be given) and returns its queue ID.
func dsnSession(t *testing.T, addr, mailLine string, rcptLines []string, content []byte) string {
	t.Helper()
	c := testrelay.Dial(t, addr)
	c.Expect(250, c.Cmd("%s", mailLine))
	for _, l := range rcptLines {
		c.Expect(250, c.Cmd("%s", l))
	}
	r := c.Expect(250, c.Data(content))
	c.Quit()
	_, id, _ := strings.Cut(r.Text(), "queued as ")
	return strings.Fields(id)[0]
}

// reportsAt returns the captures sent with the null reverse path.
func reportsAt(t *testing.T, h *hop) []capture {
	t.Helper()
	var out []capture
	for _, c := range h.captures(t) {
		if c.sc.From == "<>" {
			out = append(out, c)
		}
	}
	return out
}

// parsedReport is a delivery status notification split into its parts.
type parsedReport struct {
	header   mail.Header
	text     string
	status   []textproto.MIMEHeader // per-message fields first, then one per recipient
	returned string                 // content type of the third part
	third    []byte
}

// parseReport parses a DSN with the standard library only (RFC 6522,
// RFC 3464) and fails the test when its structure is wrong.
func parseReport(t *testing.T, data []byte) parsedReport {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("report does not parse: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("report Content-Type %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	p := parsedReport{header: msg.Header}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for i := 0; ; i++ {
		part, err := mr.NextRawPart()
		if err != nil {
			if i != 3 {
				t.Fatalf("report has %d parts, want 3 (%v)", i, err)
			}
			break
		}
		var b bytes.Buffer
		b.ReadFrom(part)
		ct := part.Header.Get("Content-Type")
		switch i {
		case 0:
			p.text = b.String()
		case 1:
			if !strings.HasPrefix(ct, "message/delivery-status") {
				t.Fatalf("second part is %q", ct)
			}
			tr := textproto.NewReader(bufioReader(b.Bytes()))
			for {
				h, err := tr.ReadMIMEHeader()
				if len(h) > 0 {
					p.status = append(p.status, h)
				}
				if err != nil {
					break
				}
			}
		case 2:
			p.returned, p.third = ct, b.Bytes()
		}
	}
	if len(p.status) < 2 {
		t.Fatalf("delivery-status part has %d field groups, want the message's and at least one recipient's", len(p.status))
	}
	return p
}

// TestFailureReport: a recipient refused with 550 gets the sender exactly
// one failure report, through Ferry's own delivery, with the hop's reply in
// the human-readable part and in Diagnostic-Code (RFC 3464 §2.3.6), and the
// original returned (RFC 3461 §4.3, RET not given).
func TestFailureReport(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--reply", "RCPT:*@bad.example=550 5.1.1 no such user here")
	r := startRelay(t, shortRetry, "", routeAll(h.Addr))
	content := testrelay.ReadTestdata(t, "pure-ascii.eml")
	id := dsnSession(t, r.Addr, "MAIL FROM:<"+sender+"> ENVID=QQ314159",
		[]string{"RCPT TO:<good@example.com>", "RCPT TO:<nobody@bad.example> ORCPT=rfc822;nobody@bad.example"}, content)
	caps := h.waitCaptures(t, 2)
	reports := reportsAt(t, h)
	if len(reports) != 1 {
		t.Fatalf("%d reports at the sink, want 1", len(reports))
	}
	rep := reports[0]
	if len(rep.sc.Rcpts) != 1 || rep.sc.Rcpts[0].To != "<"+sender+">" {
		t.Errorf("report went to %+v, want <%s>", rep.sc.Rcpts, sender)
	}
	p := parseReport(t, rep.data)
	if !strings.Contains(p.text, "550 5.1.1 no such user here") || !strings.Contains(p.text, "nobody@bad.example") {
		t.Errorf("text part lacks the recipient or the hop's reply:\n%s", p.text)
	}
	msgFields, rcpt := p.status[0], p.status[1]
	if msgFields.Get("Reporting-Mta") != "dns; "+relayHostname || msgFields.Get("Original-Envelope-Id") != "QQ314159" || msgFields.Get("Arrival-Date") == "" {
		t.Errorf("per-message fields: %v", msgFields)
	}
	for field, want := range map[string]string{
		"Final-Recipient":    "rfc822; nobody@bad.example",
		"Original-Recipient": "rfc822; nobody@bad.example",
		"Action":             "failed",
		"Status":             "5.1.1",
	} {
		if got := rcpt.Get(field); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if d := rcpt.Get("Diagnostic-Code"); !strings.Contains(d, "550 5.1.1 no such user here") {
		t.Errorf("Diagnostic-Code %q", d)
	}
	if !strings.HasPrefix(p.returned, "message/rfc822") || !bytes.Contains(p.third, []byte("Subject:")) {
		t.Errorf("returned part %q does not hold the message", p.returned)
	}
	if len(caps) != 2 || len(r.LogLines(id, "status=sent")) != 1 {
		t.Errorf("the good recipient was not delivered exactly once")
	}
}

// TestReportSuppressed: no report for NOTIFY=NEVER (RFC 3461 §4.1) nor for
// a message from the null reverse path (RFC 5321 §4.5.5); RET=HDRS returns
// headers only (RFC 3461 §4.3).
func TestReportSuppressed(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--reply", "RCPT:*@bad.example=550 5.1.1 no such user")
	r := startRelay(t, shortRetry, "", routeAll(h.Addr))
	content := testrelay.ReadTestdata(t, "pure-ascii.eml")
	never := dsnSession(t, r.Addr, "MAIL FROM:<"+sender+">", []string{"RCPT TO:<a@bad.example> NOTIFY=NEVER"}, content)
	null := dsnSession(t, r.Addr, "MAIL FROM:<>", []string{"RCPT TO:<b@bad.example>"}, content)
	hdrs := dsnSession(t, r.Addr, "MAIL FROM:<"+sender+"> RET=HDRS", []string{"RCPT TO:<c@bad.example> NOTIFY=FAILURE"}, content)
	for _, id := range []string{never, null, hdrs} {
		r.WaitLog(t, "msg=removed", "id="+id)
	}
	// The notifier logs its decision on each message: a report queued
	// ("dsn") or none ("dsn-suppressed"). Once all three are logged, every
	// report there will ever be is in the queue.
	r.WaitLog(t, "msg=dsn-suppressed", "id="+never)
	r.WaitLog(t, "msg=dsn-suppressed", "id="+null)
	r.WaitLog(t, "msg=dsn ", "id="+hdrs)
	if queued := r.LogLines("msg=dsn "); len(queued) != 1 {
		t.Fatalf("%d reports queued, want only the RET=HDRS one:\n%s", len(queued), strings.Join(queued, "\n"))
	}
	testrelay.WaitFor(t, "the RET=HDRS report", func() bool { return len(reportsAt(t, h)) >= 1 })
	reports := reportsAt(t, h)
	if len(reports) != 1 {
		t.Fatalf("%d reports, want only the RET=HDRS one", len(reports))
	}
	p := parseReport(t, reports[0].data)
	if p.status[1].Get("Final-Recipient") != "rfc822; c@bad.example" {
		t.Errorf("report is about %q", p.status[1].Get("Final-Recipient"))
	}
	if !strings.HasPrefix(p.returned, "text/rfc822-headers") || bytes.Contains(p.third, []byte("\r\n\r\n")) && len(bytes.TrimSpace(p.third[bytes.Index(p.third, []byte("\r\n\r\n")):])) > 0 {
		t.Errorf("RET=HDRS returned %q:\n%s", p.returned, p.third)
	}
}

// TestRelayedReport: NOTIFY=SUCCESS to a hop without DSN is delivered and
// the sender gets an "Action: relayed" report (RFC 3461 §5.2.2); to a hop
// with DSN the parameters pass on unchanged (§5.2.1) and no report comes
// from Ferry.
func TestRelayedReport(t *testing.T) {
	t.Parallel()
	content := testrelay.ReadTestdata(t, "pure-ascii.eml")
	t.Run("hop without DSN", func(t *testing.T) {
		t.Parallel()
		h := startSink(t, "127.0.0.1:0", "--keywords", "8BITMIME,PIPELINING,SIZE,ENHANCEDSTATUSCODES")
		r := startRelay(t, shortRetry, "", routeAll(h.Addr))
		dsnSession(t, r.Addr, "MAIL FROM:<"+sender+">", []string{"RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE"}, content)
		h.waitCaptures(t, 2)
		reports := reportsAt(t, h)
		if len(reports) != 1 {
			t.Fatalf("%d reports, want 1", len(reports))
		}
		p := parseReport(t, reports[0].data)
		if a := p.status[1].Get("Action"); a != "relayed" {
			t.Errorf("Action %q, want relayed", a)
		}
	})
	t.Run("hop with DSN", func(t *testing.T) {
		t.Parallel()
		h := startSink(t, "127.0.0.1:0")
		r := startRelay(t, shortRetry, "", routeAll(h.Addr))
		id := dsnSession(t, r.Addr, "MAIL FROM:<"+sender+"> RET=HDRS ENVID=abc+2Bdef",
			[]string{"RCPT TO:<bob@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob+40example.com"}, content)
		r.WaitLog(t, "msg=removed", "id="+id)
		caps := h.captures(t)
		if len(caps) != 1 {
			t.Fatalf("%d messages at the sink, want the message only", len(caps))
		}
		sc := caps[0].sc
		for _, want := range []string{"RET=HDRS", "ENVID=abc+2Bdef"} {
			if !strings.Contains(sc.MailLine, want) {
				t.Errorf("MAIL line %q lacks %s", sc.MailLine, want)
			}
		}
		// ORCPT's value passes unchanged; its xtext may be spelled either way
		// ("@" needs no encoding, RFC 3461 §4).
		if len(sc.RcptLines) != 1 || !strings.Contains(sc.RcptLines[0], "NOTIFY=SUCCESS,DELAY") ||
			!strings.Contains(sc.RcptLines[0], "ORCPT=rfc822;Bob+40example.com") && !strings.Contains(sc.RcptLines[0], "ORCPT=rfc822;Bob@example.com") {
			t.Errorf("RCPT lines %q lack the DSN parameters", sc.RcptLines)
		}
	})
}

// TestDelayReport: a hop that keeps answering 4xx past the warning time
// gets the sender one delay report (RFC 3464 Action: delayed), however many
// retries follow.
func TestDelayReport(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--reply", "RCPT:*@slow.example=451 4.3.0 try later")
	cfg := shortRetry + "delay_warning = \"1s\"\n"
	r := startRelay(t, cfg, "", routeAll(h.Addr))
	id := dsnSession(t, r.Addr, "MAIL FROM:<"+sender+">", []string{"RCPT TO:<x@slow.example>"}, testrelay.ReadTestdata(t, "pure-ascii.eml"))
	testrelay.WaitFor(t, "a delay report", func() bool { return len(reportsAt(t, h)) >= 1 })
	testrelay.WaitFor(t, "three more attempts", func() bool { return len(r.LogLines(id, "status=deferred")) >= 4 })
	reports := reportsAt(t, h)
	if len(reports) != 1 {
		t.Fatalf("%d reports, want exactly 1 delay report", len(reports))
	}
	p := parseReport(t, reports[0].data)
	if p.status[1].Get("Action") != "delayed" || !strings.HasPrefix(p.status[1].Get("Status"), "4.") || p.status[1].Get("Will-Retry-Until") == "" {
		t.Errorf("delay report fields: %v", p.status[1])
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
