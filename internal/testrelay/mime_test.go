package testrelay

import (
	"bytes"
	"encoding/base64"
	"mime"
	"slices"
	"strings"
	"testing"
)

// These tests check the checkers: every comparison the end-to-end tests
// rely on must catch the damage it is meant to catch, so that a passing
// test means something.

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
	orig := ReadTestdata(t, "8bit-subject.eml")
	good := convertByHand(t, orig)
	if p := Problems7Bit(good); p != nil {
		t.Fatalf("the hand conversion is not 7-bit: %v", p)
	}
	if d := DiffDecoded(orig, good); d != nil {
		t.Fatalf("a correct conversion reported as different: %v", d)
	}
	if d := DiffDecoded(orig, orig); d != nil {
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
	fwd := ReadTestdata(t, "forwarded-message.eml")
	cyr := ReadTestdata(t, "html-and-text-cyrillic.eml")
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
		{"charset changed", orig, bytes.Replace(good, []byte("charset=utf-8"), []byte("charset=iso-8859-1"), 1), "charset"},
		{"composite encoded", fwd, bytes.Replace(fwd, []byte("Content-Type: message/rfc822\r\n"), []byte("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n"), 1), "composite entity"},
		{"part dropped", fwd, bytes.Replace(fwd, []byte("--fw\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nForwarded below.\r\n"), nil, 1), "MIME entities arrived"},
		{"inner body changed", fwd, bytes.Replace(fwd, []byte("bien."), []byte("mal."), 1), "decoded content differs"},
		{"one octet in a leaf", cyr, bytes.Replace(cyr, []byte("\xd0\x9f"), []byte("\xd0\x9e"), 1), "decoded content differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.orig, tc.got) {
				t.Fatal("the damage did not apply")
			}
			d := DiffDecoded(tc.orig, tc.got)
			if d == nil || !strings.Contains(strings.Join(d, "\n"), tc.want) {
				t.Errorf("DiffDecoded = %q, want a difference mentioning %q", d, tc.want)
			}
		})
	}
}

func TestDiffDecodedEncodedWords(t *testing.T) {
	cyr := ReadTestdata(t, "html-and-text-cyrillic.eml")
	if d := DiffDecoded(cyr, cyr); len(d) != 0 {
		t.Fatalf("a message differs from itself: %q", d)
	}
	subj := ReadTestdata(t, "8bit-subject.eml")
	raw := []byte("Subject: R\xc3\xa9union \xc3\xa0 10h")
	if !bytes.Contains(subj, raw) {
		t.Fatalf("8bit-subject.eml has no %q", raw)
	}
	// Encoded-words with the space between two words dropped (RFC 2047 §6.2).
	bad := bytes.Replace(subj, raw, []byte("Subject: =?utf-8?q?R=C3=A9union?= =?utf-8?q?=C3=A0?= 10h"), 1)
	if d := DiffDecoded(subj, bad); len(d) == 0 {
		t.Error("a lost space between encoded-words went unnoticed")
	}
	good := bytes.Replace(subj, raw, []byte("Subject: =?utf-8?q?R=C3=A9union_?= =?utf-8?q?=C3=A0?= 10h"), 1)
	if d := DiffDecoded(subj, good); len(d) != 0 {
		t.Errorf("a correct encoded Subject is reported: %q", d)
	}
}
