package testrelay

import (
	"bytes"
	"strings"
	"testing"
)

func TestProblems7Bit(t *testing.T) {
	long := strings.Repeat("x", 999)
	for _, tc := range []struct {
		name  string
		data  string
		count int    // problems Problems7Bit reports
		want  string // a word the first problem must mention; "" when valid
	}{
		{"7-bit", "a: b\r\n\r\nhello\r\n", 0, ""},
		{"clean lines", "a\r\nb\r\n", 0, ""},
		{"8-bit octet", "a: b\r\n\r\nh\xc3\xa9llo\r\n", 2, "not 7-bit"},
		{"high octet", "caf\xe9\r\n", 1, "not 7-bit"},
		{"NUL", "a: b\r\n\r\nh\x00llo\r\n", 1, "not 7-bit"},
		{"998 octets", "a: b\r\n\r\n" + long[:998] + "\r\n", 0, ""},
		{"999 octets", "a: b\r\n\r\n" + long + "\r\n", 1, "999 octets"},
		{"999 octets at the end", long, 2, "999 octets"},
		{"bare LF", "a: b\r\n\r\nx\ny\r\n", 1, "bare LF"},
		{"bare CR", "a: b\r\n\r\nx\ry\r\n", 1, "bare CR"},
		{"no final CRLF", "a", 1, "does not end with CRLF"},
		{"empty", "", 1, "does not end with CRLF"},
		{"many", strings.Repeat("\xff", 50) + "\r\n", maxProblems + 2, "not 7-bit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Problems7Bit([]byte(tc.data))
			if len(p) != tc.count || (tc.count > 0 && !strings.Contains(p[0], tc.want)) {
				t.Errorf("Problems7Bit = %q, want %d problem(s) mentioning %q", p, tc.count, tc.want)
			}
		})
	}
}

func TestProblemsLines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		data  string
		count int
	}{
		{"8-bit is fine", "caf\xe9\r\n", 0},
		{"NUL is fine", "a\x00b\r\n", 0},
		{"bare LF", "a\nb\r\n", 1},
		{"bare CR", "a\rb\r\n", 1},
		{"999 octets", strings.Repeat("\xe9", 999) + "\r\n", 1},
		{"no final CRLF", "a\r\nb", 1},
	} {
		if p := ProblemsLines([]byte(tc.data)); len(p) != tc.count {
			t.Errorf("%s: ProblemsLines = %q, want %d problem(s)", tc.name, p, tc.count)
		}
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
		{"only a folded field", "Received: a\r\n b", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n := StripTrace([]byte(tc.in))
			if string(got) != tc.want || n != tc.received {
				t.Errorf("StripTrace = %q, %d; want %q, %d", got, n, tc.want, tc.received)
			}
		})
	}
}

func TestStripFirstField(t *testing.T) {
	for _, tc := range []struct {
		in, field, rest string
	}{
		{"Received: a\r\n\tb\r\nFrom: c\r\n", "Received: a\r\n\tb\r\n", "From: c\r\n"},
		{"From: c\r\n\r\nbody\r\n", "From: c\r\n", "\r\nbody\r\n"},
		{"From: c", "From: c", ""},
	} {
		field, rest := StripFirstField([]byte(tc.in))
		if string(field) != tc.field || string(rest) != tc.rest {
			t.Errorf("StripFirstField(%q) = %q, %q; want %q, %q", tc.in, field, rest, tc.field, tc.rest)
		}
	}
}

func TestFirstDiffAndLongestLine(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"abc", "abd", 2},
		{"abc", "abc", 3},
		{"ab", "abc", 2},
		{"", "x", 0},
	} {
		if got := FirstDiff([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("FirstDiff(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if n := LongestLine([]byte("ab\r\nabcd\r\nabc")); n != 4 {
		t.Errorf("LongestLine = %d, want 4", n)
	}
	if c := Clip(bytes.Repeat([]byte("x"), 300)); len(c) != 200+len("…") {
		t.Errorf("Clip kept %d octets", len(c))
	}
}
