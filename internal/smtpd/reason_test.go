package smtpd

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

// reasonPolicy refuses with reasons: the sender domain refused.example at
// MAIL, the recipient domain denied.example at RCPT, and the sender
// late@example.com at DATA and BDAT.
type reasonPolicy struct{ AcceptAll }

func (reasonPolicy) Mail(_ SessionInfo, from smtp.Path, _ smtp.Params) *Refusal {
	if from.Domain == "refused.example" {
		return &Refusal{Reply: smtp.NewReply(553, "5.7.1", "Sender address rejected"), Reason: "sender domain refused.example listed"}
	}
	return nil
}

func (reasonPolicy) Rcpt(_ SessionInfo, to smtp.Path, _ smtp.Params) *Refusal {
	if to.Domain == "denied.example" {
		return &Refusal{Reply: smtp.NewReply(554, "5.7.1", "Relay access denied"), Reason: "domain denied.example is not an accepted domain"}
	}
	return nil
}

func (reasonPolicy) Data(_ SessionInfo, env *smtp.Envelope) *Refusal {
	if env.From.LocalPart == "late" {
		return &Refusal{Reply: smtp.NewReply(450, "4.7.1", "Message rate limit exceeded"), Reason: "client over 1/1h"}
	}
	return nil
}

// TestRefusalReasonLogged: a Policy's reasons reach the reject line
// of MAIL, RCPT, DATA and BDAT as reason=, and never the client, which gets
// the reply alone; a refusal that is not the policy's has no reason, also
// right after one that had.
func TestRefusalReasonLogged(t *testing.T) {
	var logBuf syncBuffer
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&logBuf, nil))
	_, addr := startServer(t, cfg, &memStore{}, reasonPolicy{})
	runScript(t, addr, script(lines(
		greeting,
		"C: HELO client.test",
		"S: 250 mx.test",
		"C: MAIL FROM:<a@refused.example>",
		"S: 553 Sender address rejected",
		"C: MAIL FROM:<a@example.com>",
		"S: 250 Ok",
		"C: RCPT TO:<x@denied.example>",
		"S: 554 Relay access denied",
		"C: RCPT TO:bad",
		"S: 501 Syntax: RCPT TO:<address> (address must be enclosed in <>)",
		"C: RSET",
		"S: 250 Ok"), ehloDefault, lines(
		"C: MAIL FROM:<late@example.com>",
		"S: 250 2.1.0 Ok",
		"C: RCPT TO:<b@example.org>",
		"S: 250 2.1.5 Ok",
		"C: DATA",
		"S: 450 4.7.1 Message rate limit exceeded",
		"C: MAIL FROM:<late@example.com>",
		"C: RCPT TO:<b@example.org>",
		"c: BDAT 6 LAST\r\nQUIT\r\n",
		"C: NOOP",
		"S: 250 2.1.0 Ok",
		"S: 250 2.1.5 Ok",
		"S: 450 4.7.1 Message rate limit exceeded",
		"S: 250 2.0.0 Ok")))
	rejects := map[string]map[string]any{} // command → reject line
	for _, l := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if cmd, ok := line["command"].(string); ok && line["msg"] == "reject" {
			rejects[cmd] = line
		}
	}
	for cmd, reason := range map[string]string{
		"MAIL FROM:<a@refused.example>": "sender domain refused.example listed",
		"RCPT TO:<x@denied.example>":    "domain denied.example is not an accepted domain",
		"DATA":                          "client over 1/1h",
		"BDAT 6 LAST":                   "client over 1/1h",
		"RCPT TO:bad":                   "",
	} {
		l, ok := rejects[cmd]
		got, _ := l["reason"].(string)
		switch {
		case !ok:
			t.Errorf("no reject line for %q in the log:\n%s", cmd, logBuf.String())
		case got != reason:
			t.Errorf("reject line for %q: reason %q, want %q: %v", cmd, got, reason, l)
		}
	}
}
