package main

import (
	"strings"
	"testing"
	"time"
)

// TestSendmailArgs: sendmail's option forms, attached ("-fuser") or
// separate, the compatibility options, and refusals.
func TestSendmailArgs(t *testing.T) {
	a, err := parseSendmailArgs([]string{"-FCron Daemon", "-i", "-odi", "-oem", "-oi", "-t", "-fcron@h.example", "-B", "8bitmime", "a@x.example", "--", "-b@x.example"})
	if err != nil {
		t.Fatal(err)
	}
	if a.fullName != "Cron Daemon" || !a.dotOK || !a.fromHeader || a.sender != "cron@h.example" || !a.body8 ||
		strings.Join(a.rcpts, " ") != "a@x.example -b@x.example" {
		t.Errorf("parsed %+v", a)
	}
	for _, bad := range [][]string{{"-X"}, {"-f"}, {"-f", ""}, {"-C", ""}, {"-B", "binary"}, {"-odx"}} {
		if _, err := parseSendmailArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSendmailHeader: From:, Date: and Message-ID: are added only when
// missing; Bcc: goes under -t with its folded lines.
func TestSendmailHeader(t *testing.T) {
	msg, err := readMessage(strings.NewReader("To: a@x.example\nBcc: b@x.example,\n  c@x.example\nSubject: s\n\nbody\n"), true)
	if err != nil {
		t.Fatal(err)
	}
	s, code, err := prepareSubmission(sendmailArgs{fromHeader: true, sender: "me@h.example", senderSet: true}, "h.example", msg, time.Unix(0, 0))
	if err != nil || code != exOK {
		t.Fatalf("%d %v", code, err)
	}
	head := string(s.header)
	if strings.Contains(head, "Bcc") || strings.Contains(head, "c@x.example") || !strings.HasPrefix(head, "From: <me@h.example>\r\nDate: ") ||
		!strings.Contains(head, "Message-ID: <") || !strings.HasSuffix(head, "Subject: s\r\n\r\n") {
		t.Errorf("header:\n%s", head)
	}
	if len(s.rcpts) != 3 {
		t.Errorf("recipients %v, want a, b and c", s.rcpts)
	}
}
