package interop

import (
	"strings"
	"testing"
)

// This test checks the package's own reading of Postfix's log; the
// content checkers the interop tests rely on are tested in
// internal/testrelay. It needs no Postfix.

// postfixLogSample is Postfix 3.7's debug_peer logging of two interleaved
// sessions, as the maillog_file records it.
const postfixLogSample = `Nov 28 15:47:29 postfix postfix-ferrytest/smtpd[10546]: < unknown[127.0.0.1]: EHLO ferry.test
Nov 28 15:47:29 postfix postfix-ferrytest/smtpd[10546]: < unknown[127.0.0.1]: MAIL FROM:<tester@example.net> SIZE=1269 BODY=8BITMIME
Nov 28 15:47:29 postfix postfix-ferrytest/smtpd[10547]: < unknown[127.0.0.1]: MAIL FROM:<tester@example.net> SIZE=446
Nov 28 15:47:29 postfix postfix-ferrytest/smtpd[10546]: > unknown[127.0.0.1]: 250 2.1.0 Ok
Nov 28 15:47:29 postfix postfix-ferrytest/smtpd[10547]: < unknown[127.0.0.1]: RCPT TO:<pure-ascii@dest.test>
Nov 28 15:47:29 postfix postfix-ferrytest/smtpd[10546]: < unknown[127.0.0.1]: RCPT TO:<simple-utf8-french@dest.test>
Nov 28 15:47:29 postfix postfix-ferrytest/cleanup[10545]: 7DDA1BA0CE: message-id=<p1@example.net>
`

func TestPostfixLogParsing(t *testing.T) {
	mails := mailFromLines(postfixLogSample)
	if len(mails) != 2 || !strings.HasSuffix(mails[0], "BODY=8BITMIME") || mails[1] != "MAIL FROM:<tester@example.net> SIZE=446" {
		t.Errorf("mailFromLines = %q", mails)
	}
	for rcpt, want := range map[string]string{
		"pure-ascii@dest.test":         "MAIL FROM:<tester@example.net> SIZE=446",
		"simple-utf8-french@dest.test": "MAIL FROM:<tester@example.net> SIZE=1269 BODY=8BITMIME",
		"nobody@dest.test":             "",
	} {
		if got := mailFromFor(postfixLogSample, rcpt); got != want {
			t.Errorf("mailFromFor(%s) = %q, want %q", rcpt, got, want)
		}
	}
}
