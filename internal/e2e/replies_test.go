package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestHopReplies: a temporary refusal at any stage of the transaction
// (including a 421 greeting) is retried until the message is delivered,
// exactly once; a permanent refusal bounces at once and is not retried
// (RFC 5321 §4.2.1, §4.5.4.1).
func TestHopReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rule      string
		delivered bool
		refusal   []string // words of the sink's log line for each refusal
	}{
		{"421 greeting", "CONNECT:1=421 4.7.0 busy", true, nil},
		{"451 at MAIL", "MAIL#1:*=451 4.3.0 try later", true, []string{"reject", "stage=MAIL"}},
		{"451 at DATA", "DATA#1:*=451 4.3.0 try later", true, []string{"reject", "stage=DATA"}},
		{"451 after the content", "END#1:*=451 4.3.0 try later", true, []string{"not queued"}},
		{"550 at MAIL", "MAIL:" + sender + "=550 5.7.1 sender refused", false, []string{"reject", "stage=MAIL"}},
		{"554 after the content", "END:user@example.com=554 5.6.0 content rejected", false, []string{"not queued"}},
	}
	content := testrelay.ReadTestdata(t, "simple-utf8-french.eml")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := startSink(t, "127.0.0.1:0", "--reply", tc.rule)
			r := startRelay(t, shortRetry, "", routeAll(h.Addr))
			id := testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, content)
			r.WaitLog(t, "msg=removed", "id="+id)
			var caps []capture
			for _, cp := range h.captures(t) {
				if cp.sc.From != "<>" {
					caps = append(caps, cp)
				}
			}
			deferred := len(r.LogLines(id, "status=deferred"))
			bounced := len(r.LogLines(id, "status=bounced"))
			if tc.delivered {
				if len(caps) != 1 {
					t.Fatalf("sink holds %d messages, want exactly 1", len(caps))
				}
				if rest := checkReceived(t, caps[0].data, id); !bytes.Equal(rest, content) {
					t.Errorf("arrived changed at offset %d", testrelay.FirstDiff(rest, content))
				}
				if deferred != 1 || bounced != 0 {
					t.Errorf("%d deferred and %d bounced log lines, want 1 and 0", deferred, bounced)
				}
			} else {
				if len(caps) != 0 {
					t.Errorf("sink holds %d messages, want none", len(caps))
				}
				if deferred != 0 || bounced != 1 {
					t.Errorf("%d deferred and %d bounced log lines, want 0 and 1", deferred, bounced)
				}
			}
			if tc.refusal != nil {
				want := 1
				if n := len(h.LogLines(tc.refusal...)); n != want {
					t.Errorf("the hop refused %d times (log lines with %q), want %d", n, tc.refusal, want)
				}
			}
		})
	}
}

// TestHopSizeTooSmall: a hop whose SIZE limit is below the message size
// gets nothing; the recipient fails at once with 552 5.3.4 (RFC 1870 §6.1).
func TestHopSizeTooSmall(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--size", "500")
	r := startRelay(t, shortRetry, "", routeAll(h.Addr))
	content := testrelay.ReadTestdata(t, "simple-utf8-french.eml") // 1103 octets
	id := testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, content)
	line := r.WaitLog(t, id, "status=bounced")
	if !strings.Contains(line, "552") || !strings.Contains(line, "5.3.4") {
		t.Errorf("bounce line %q lacks 552 5.3.4", line)
	}
	r.WaitLog(t, "msg=removed", "id="+id)
	if n := len(r.LogLines(id, "status=deferred")); n != 0 {
		t.Errorf("%d deferrals for a message the hop can never take", n)
	}
	for _, cp := range h.captures(t) {
		if cp.sc.From != "<>" {
			t.Errorf("hop got message %s despite SIZE 500", cp.sc.ID)
		}
	}
}

// TestRoutePolicies: a route with eightbit = "bounce" fails 8-bit mail to
// a hop without 8BITMIME with 5.6.3 (RFC 3463 §3.7) and still delivers 7-bit
// mail; a route with discard_keywords = ["8BITMIME"] (Postfix's
// smtp_discard_ehlo_keywords) converts although the hop offers 8BITMIME.
func TestRoutePolicies(t *testing.T) {
	t.Parallel()
	domino := startSink(t, "127.0.0.1:0", "--keywords", "SIZE,PIPELINING,HELP", "--strict-7bit")
	full := startSink(t, "127.0.0.1:0", "--strict-7bit")
	r := startRelay(t, fmt.Sprintf(`%s
[[route]]
domain = "bounce.example"
nexthop = "%s"
eightbit = "bounce"

[[route]]
domain = "discard.example"
nexthop = "%s"
discard_keywords = ["8BITMIME"]
`, shortRetry, literalHop(domino.Addr), literalHop(full.Addr)), "")
	eight := testrelay.ReadTestdata(t, "simple-utf8-french.eml")
	ascii := testrelay.ReadTestdata(t, "pure-ascii.eml")

	idEight := testrelay.SendOne(t, r.Addr, sender, []string{"user@bounce.example"}, eight)
	idASCII := testrelay.SendOne(t, r.Addr, sender, []string{"user@bounce.example"}, ascii)
	line := r.WaitLog(t, idEight, "status=bounced")
	if !strings.Contains(line, "5.6.3") {
		t.Errorf("8-bit bounce line %q lacks 5.6.3", line)
	}
	cp := domino.waitCaptures(t, 1)[0]
	if rest := checkReceived(t, cp.data, idASCII); !bytes.Equal(rest, ascii) {
		t.Errorf("7-bit message on the bounce route arrived changed")
	}
	r.WaitLog(t, "msg=removed", "id="+idEight)
	for _, cp := range domino.captures(t) {
		if bytes.Contains(cp.data, []byte("Voil")) {
			t.Errorf("the 8-bit message reached the bounce route's hop as %s", cp.sc.ID)
		}
	}

	testrelay.SendOne(t, r.Addr, sender, []string{"user@discard.example"}, eight)
	cp = full.waitCaptures(t, 1)[0]
	checkSevenBit(t, "discard 8BITMIME", eight, cp)
}
