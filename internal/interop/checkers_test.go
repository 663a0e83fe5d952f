package interop

import (
	"bytes"
	"encoding/base64"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// These tests check the checkers: every comparison the interop tests rely
// on must catch the damage it is meant to catch, so that a passing interop
// test means something. They need no Postfix.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// base64Lines encodes p in 76-column CRLF lines (RFC 2045 §6.8).
func base64Lines(p []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(p)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

// convertByHand turns a single-part 8-bit message into 7-bit by hand:
// base64 body, CTE field relabelled, Subject as an encoded-word. It is an
// independent stand-in for Ferry's converter.
func convertByHand(t *testing.T, msg []byte) []byte {
	t.Helper()
	head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		t.Fatal("no header/body separator")
	}
	var out bytes.Buffer
	for _, f := range strings.Split(string(head), "\r\n") {
		switch {
		case strings.HasPrefix(f, "Content-Transfer-Encoding:"):
			f = "Content-Transfer-Encoding: base64"
		case strings.HasPrefix(f, "Subject: "):
			f = "Subject: " + mime.BEncoding.Encode("utf-8", strings.TrimPrefix(f, "Subject: "))
		}
		out.WriteString(f + "\r\n")
	}
	out.WriteString("\r\n")
	out.Write(base64Lines(body))
	return out.Bytes()
}

func TestDiffDecodedCatchesDamage(t *testing.T) {
	orig := readTestdata(t, "8bit-subject.eml")
	good := convertByHand(t, orig)
	if p := problems7Bit(good); p != nil {
		t.Fatalf("the hand conversion is not 7-bit: %v", p)
	}
	if d := diffDecoded(orig, good); d != nil {
		t.Fatalf("a correct conversion reported as different: %v", d)
	}
	if d := diffDecoded(orig, orig); d != nil {
		t.Fatalf("the original reported as different from itself: %v", d)
	}
	// One base64 character flipped in the body.
	i := bytes.Index(good, []byte("\r\n\r\n")) + 10
	flipped := slices.Clone(good)
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	fwd := readTestdata(t, "forwarded-message.eml")
	for _, tc := range []struct {
		name      string
		orig, got []byte
		want      string // a word the difference must mention
	}{
		{"body octet changed", orig, flipped, "decoded content differs"},
		{"body truncated", orig, good[:len(good)-40], "decoding base64"},
		{"subject changed", orig, bytes.Replace(good, []byte("=?utf-8?b?"), []byte("=?utf-8?b?QQ"), 1), "field Subject"},
		{"field dropped", orig, bytes.Replace(good, []byte("Message-ID: <p6@example.net>\r\n"), nil, 1), "field Message-Id"},
		{"field added", orig, bytes.Replace(good, []byte("Date:"), []byte("X-Added: yes\r\nDate:"), 1), "field X-Added added"},
		{"media type changed", orig, bytes.Replace(good, []byte("text/plain"), []byte("text/html"), 1), "arrived as"},
		{"composite encoded", fwd, bytes.Replace(fwd, []byte("Content-Type: message/rfc822\r\n"), []byte("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n"), 1), "composite entity"},
		{"part dropped", fwd, bytes.Replace(fwd, []byte("--fw\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nForwarded below.\r\n"), nil, 1), "MIME entities arrived"},
		{"inner body changed", fwd, bytes.Replace(fwd, []byte("bien."), []byte("mal."), 1), "decoded content differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := diffDecoded(tc.orig, tc.got)
			if d == nil || !strings.Contains(strings.Join(d, "\n"), tc.want) {
				t.Errorf("diffDecoded = %q, want a difference mentioning %q", d, tc.want)
			}
		})
	}
}

func TestProblems7Bit(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want string // "" for valid
	}{
		{"7-bit", "a: b\r\n\r\nhello\r\n", ""},
		{"8-bit octet", "a: b\r\n\r\nh\xc3\xa9llo\r\n", "not 7-bit"},
		{"NUL", "a: b\r\n\r\nh\x00llo\r\n", "not 7-bit"},
		{"998 octets", "a: b\r\n\r\n" + strings.Repeat("x", 998) + "\r\n", ""},
		{"999 octets", "a: b\r\n\r\n" + strings.Repeat("x", 999) + "\r\n", "999 octets"},
		{"bare LF", "a: b\r\n\r\nx\ny\r\n", "bare CR or LF"},
		{"bare CR", "a: b\r\n\r\nx\ry\r\n", "bare CR or LF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := strings.Join(problems7Bit([]byte(tc.data)), "\n")
			if (tc.want == "") != (p == "") || !strings.Contains(p, tc.want) {
				t.Errorf("problems7Bit = %q, want %q", p, tc.want)
			}
		})
	}
}

func TestStripTrace(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		received       int
	}{
		{"none", "From: a\r\n\r\nx\r\n", "From: a\r\n\r\nx\r\n", 0},
		{"two folded", "Received: from a\r\n\tby b; date\r\nreceived: from c\r\n by d\r\nFrom: a\r\n\r\nx\r\n", "From: a\r\n\r\nx\r\n", 2},
		{"return-path", "Return-Path: <a@b>\r\nReceived: x\r\nSubject: s\r\n\r\n", "Subject: s\r\n\r\n", 1},
		{"not at the top", "From: a\r\nReceived: x\r\n\r\n", "From: a\r\nReceived: x\r\n\r\n", 0},
		{"Received in a body", "\r\nReceived: x\r\n", "\r\nReceived: x\r\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n := stripTrace([]byte(tc.in))
			if string(got) != tc.want || n != tc.received {
				t.Errorf("stripTrace = %q, %d; want %q, %d", got, n, tc.want, tc.received)
			}
		})
	}
}

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
