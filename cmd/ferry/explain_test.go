package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// startExplainSink starts a sink offering keywords and returns the
// --route flag value for domain to reach it.
func startExplainSink(t *testing.T, domain string, keywords []string) (string, *sink.Sink) {
	t.Helper()
	s, err := sink.Start(sink.Options{Keywords: keywords})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	port := netip.MustParseAddrPort(s.Addr()).Port()
	return domain + "=[127.0.0.1]:" + strconv.Itoa(int(port)), s
}

func writeMessage(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExplainWithout8BitMIME: the seed's case, a hop like Domino with
// 8BITMIME off, and an 8-bit, DKIM-signed message.
func TestExplainWithout8BitMIME(t *testing.T) {
	rt, s := startExplainSink(t, "company.test", []string{"SIZE 10240000", "PIPELINING", "HELP"})
	file := writeMessage(t, cliEightBit)
	code, out, errOut := ferry("explain", "--to", "user@company.test", "--from", "a@x.test", "--route", rt, file)
	if code != 0 {
		t.Fatalf("explain: %d %s %s", code, out, errOut)
	}
	hop := strings.TrimPrefix(rt, "company.test=[")
	hop = strings.Replace(hop, "]", "", 1)
	for _, want := range []string{
		"Route:     company.test=[127.0.0.1]:", "(eightbit=convert, dkim_signed=convert, tls=may)",
		"Next hop:  " + hop + " ([127.0.0.1]:",
		"Offers:    HELP PIPELINING SIZE 10240000",
		"Needs:     8BITMIME",
		"part 1.1   text/plain               8bit → quoted-printable",
		"Plan:      body=8BITMIME→7BIT converted, DATA",
		"Next hop " + hop + " does not offer 8BITMIME (probed just now); this message has 2 of 4 parts with 8-bit text; it carries a DKIM signature; " +
			"route policy is convert: parts 1.1 and 1.2 will be sent quoted-printable",
		"the hop does not offer STARTTLS: the session is not encrypted.",
		"Signatures: It carries a DKIM signature by s1._domainkey.x.test (not checked: no [dkim] resolver); " +
			"the conversion changes the signed content, so that signature will no longer verify at the next hop (RFC 6376 §5.3); " +
			"Ferry adds no signature: no [[dkim.key]] is configured.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("explain sent %d messages", n)
	}

	// Route policy bounce.
	code, out, _ = ferry("explain", "--to", "user@company.test", "--route", rt+";eightbit=bounce", file)
	if code != 0 || !strings.Contains(out, "Outcome:   fail at once: 554 5.6.3") ||
		!strings.Contains(out, "route policy is bounce: Ferry must not send 8-bit content to this hop (RFC 6152 §3) and fails the recipient at once with 554 5.6.3") {
		t.Errorf("bounce policy: %d\n%s", code, out)
	}

	// JSON.
	code, out, _ = ferry("explain", "--json", "--to", "user@company.test", "--route", rt, file)
	var ex explanation
	if err := json.Unmarshal([]byte(out), &ex); code != 0 || err != nil {
		t.Fatalf("json: %d %v\n%s", code, err, out)
	}
	if ex.Source != "probe" || ex.Parts != 4 || ex.Conversion == nil || len(ex.Conversion.Parts) != 2 ||
		!strings.HasPrefix(ex.Plan, "body=8BITMIME→7BIT converted") || len(ex.Explanation) < 3 || ex.Needs[0] != "8BITMIME" {
		t.Errorf("json = %+v", ex)
	}
}

// TestExplainWith8BitMIME: a hop with 8BITMIME takes the message as it is.
func TestExplainWith8BitMIME(t *testing.T) {
	rt, _ := startExplainSink(t, "modern.test", nil)
	file := writeMessage(t, cliEightBit)
	code, out, errOut := ferry("explain", "--to", "user@modern.test", "--route", rt, file)
	if code != 0 {
		t.Fatalf("explain: %d %s %s", code, out, errOut)
	}
	for _, want := range []string{"Plan:      body=8BITMIME, DATA", "offers 8BITMIME (probed just now)",
		"it goes as it is with BODY=8BITMIME; nothing is converted"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "will no longer verify") || !strings.Contains(out, "the message goes unchanged, so its signatures still verify at the next hop") {
		t.Errorf("claims the signature breaks:\n%s", out)
	}
	// A 7-bit message.
	code, out, _ = ferry("explain", "--to", "user@modern.test", "--route", rt, writeMessage(t, cliPlain))
	if code != 0 || !strings.Contains(out, "this message is 7-bit clean; it goes as it is; nothing is converted") || !strings.Contains(out, "Needs:     nothing beyond plain SMTP") {
		t.Errorf("7-bit: %d\n%s", code, out)
	}
}

// TestExplainCachedAndQueued explains a queued message by ID with the
// server's cached capabilities.
func TestExplainCachedAndQueued(t *testing.T) {
	f := newAdminFixture(t)
	seen := time.Now().Add(-3 * time.Minute)
	f.hops.Record(deliver.HopInfo{Hop: "127.0.0.1:2526", Relay: "[127.0.0.1]:2526", ESMTP: true,
		Keywords: smtp.Extensions{"SIZE": "10240000", "PIPELINING": ""}, Seen: seen})
	id := f.put(t, cliEightBit, "alice@x.test", "bob@domino.test")
	code, out, errOut := ferry("explain", "--admin", f.addr, "--token-file", f.token, "--cached", "--route", "domino.test=[127.0.0.1]:2526", id[:len(id)-1])
	if code != 0 {
		t.Fatalf("explain: %d %s %s", code, out, errOut)
	}
	for _, want := range []string{"Message:   queued message " + id, "Envelope:  from <alice@x.test> to <bob@domino.test>",
		"from the server's cache, seen 3 min ago", "Next hop 127.0.0.1:2526 does not offer 8BITMIME (seen 3 min ago)",
		"parts 1.1 and 1.2 will be sent quoted-printable"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	// A hop the server has not seen.
	code, out, _ = ferry("explain", "--admin", f.addr, "--token-file", f.token, "--cached", "--route", "domino.test=[127.0.0.1]:2999", id)
	if code != 1 || !strings.Contains(out, "Error:     the running server has not connected to 127.0.0.1:2999 since it started") {
		t.Errorf("unseen hop: %d %q", code, out)
	}
	// Errors: no --to for a file, unknown ID.
	if code, _, errOut := ferry("explain", writeMessage(t, cliPlain)); code != 1 || !strings.Contains(errOut, "--to is required") {
		t.Errorf("no --to: %d %q", code, errOut)
	}
	if code, _, errOut := ferry("explain", "--admin", f.addr, "--token-file", f.token, "--to", "a@b.test", "NOSUCH"); code != 1 || !strings.Contains(errOut, "no such message") {
		t.Errorf("unknown ID: %d %q", code, errOut)
	}
}

// TestExplainUnreachable reports a hop nobody answers at.
func TestExplainUnreachable(t *testing.T) {
	rt := "down.test=[127.0.0.1]:" + strconv.Itoa(testrelay.RefusedPort(t))
	code, out, _ := ferry("explain", "--to", "u@down.test", "--route", rt, writeMessage(t, cliPlain))
	if code != 1 || !strings.Contains(out, "Error:     no next hop reachable") {
		t.Errorf("unreachable: %d\n%s", code, out)
	}
}

// TestExplainWith8BitMIMELongLine: to a hop with 8BITMIME, a message with
// one line over 998 octets in one of its two 8-bit parts goes with
// BODY=8BITMIME, and only that part is converted.
func TestExplainWith8BitMIMELongLine(t *testing.T) {
	rt, _ := startExplainSink(t, "modern.test", []string{"SIZE 10240000", "8BITMIME", "PIPELINING"})
	msg := strings.Replace(cliEightBit, "<p>Grüße", "<p>"+strings.Repeat("long ", 220)+"Grüße", 1)
	code, out, errOut := ferry("explain", "--to", "user@modern.test", "--route", rt, writeMessage(t, msg))
	if code != 0 {
		t.Fatalf("explain: %d %s %s", code, out, errOut)
	}
	for _, want := range []string{
		"Plan:      body=8BITMIME→8BITMIME converted, DATA",
		"part 1.2   text/html                8bit → quoted-printable",
		"this message has 1 of 4 parts with content an 8BITMIME hop cannot take as it is (binary or over-long lines)",
		"route policy is convert: part 1.2 will be sent quoted-printable; 1 part with 8-bit text goes as it is with BODY=8BITMIME",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "part 1.1   text/plain") {
		t.Errorf("the 8-bit part that fits is listed as converted:\n%s", out)
	}
}
