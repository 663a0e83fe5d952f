package downgrade

import (
	"errors"
	"mime"
	"strings"
	"testing"
)

func TestEncodeAddressList(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{" plain@example.org", " plain@example.org", false},
		{" J\xc3\xb6rg <j@example.org>", " =?utf-8?B?SsO2cmc=?= <j@example.org>", false},
		{" \"M\xc3\xbcller, J\\\"o\" <m@example.org>", " =?utf-8?B?TcO8bGxlciwgSiJv?= <m@example.org>", false},
		{" a@example.org (B\xc3\xbcro)", " a@example.org (=?utf-8?B?QsO8cm8=?=)", false},
		{" Gr\xc3\xbcppe: a@example.org;", " =?utf-8?Q?Gr=C3=BCppe?=: a@example.org;", false},
		{" Caf\xe9 <c@example.org>", " =?unknown-8bit?Q?Caf=E9?= <c@example.org>", false},
		{" j\xc3\xb6rg@example.org", "", true},
		{" J <j@ex\xc3\xa4mple.org>", "", true},
		{" J\xc3\xb6rg", "", true}, // a phrase with no address is no display name
	}
	for _, tt := range tests {
		got, err := encodeAddressList([]byte(tt.in), "")
		if tt.err {
			if !errors.Is(err, errAddr8bit) {
				t.Errorf("%q: err %v, want errAddr8bit", tt.in, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: got %q (%v), want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestEncodeUnstructured(t *testing.T) {
	dec := &mime.WordDecoder{CharsetReader: rawCharset}
	tests := []string{
		" R\xc3\xa9union \xc3\xa0 10h",
		" keep this \xc3\xa9 and that",
		"\xc3\xa9",
		" two  spaces \xc3\xa9  between \xc3\xa9 words ",
		" " + strings.Repeat("\xd0\x96", 100),
		" caf\xe9 latin-1",
	}
	for _, in := range tests {
		enc := encodeUnstructured([]byte(in), "")
		raw, ok := fold("Subject", enc)
		if !ok {
			t.Fatalf("%q: fold failed", in)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n") {
			if len(line) > 78 || has8bit([]byte(line)) {
				t.Errorf("%q: bad line %q", in, line)
			}
		}
		for _, w := range strings.Fields(string(enc)) {
			if strings.HasPrefix(w, "=?") && len(w) > maxEncodedWord {
				t.Errorf("%q: encoded-word of %d characters", in, len(w))
			}
		}
		unfolded := strings.ReplaceAll(strings.TrimSuffix(string(raw), "\r\n"), "\r\n", "")
		got, err := dec.DecodeHeader(strings.TrimPrefix(unfolded, "Subject:"))
		want := in
		if !strings.HasPrefix(in, " ") {
			want = " " + in // a space is added after the colon
		}
		if err != nil || got != want {
			t.Errorf("%q: decodes to %q (%v)", in, got, err)
		}
	}
}

func TestFold(t *testing.T) {
	v := " " + strings.Repeat("word ", 40) + "end"
	raw, ok := fold("X-Long", []byte(v))
	if !ok {
		t.Fatal("fold failed")
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n")
	for _, l := range lines {
		if len(l) > 76 {
			t.Errorf("line of %d", len(l))
		}
	}
	if got := strings.Join(lines, ""); got != "X-Long:"+v {
		t.Errorf("unfolds to %q", got)
	}
	if _, ok := fold("X", []byte(" "+strings.Repeat("x", 1200))); ok {
		t.Error("a 1200-octet word folded")
	}
	if raw, _ := fold("X", []byte(" a  ")); string(raw) != "X: a  \r\n" {
		t.Errorf("trailing white space: %q", raw)
	}
}

func TestParseMediaTypeAndLabel(t *testing.T) {
	tests := []struct{ in, full, boundary string }{
		{`multipart/mixed; boundary="a b"`, "multipart/mixed", "a b"},
		{`Multipart/Alternative (comment); BOUNDARY=xyz; charset=x`, "multipart/alternative", "xyz"},
		{`text/plain`, "text/plain", ""},
		{`multipart/mixed; charset="x;y"; boundary=q`, "multipart/mixed", "q"},
	}
	for _, tt := range tests {
		m := parseMediaType([]byte(tt.in))
		if m.full != tt.full || m.boundary != tt.boundary {
			t.Errorf("%q: got %q %q", tt.in, m.full, m.boundary)
		}
	}
	for in, want := range map[string]string{" 8BIT (comment)": "8bit", "\tQuoted-Printable ": "quoted-printable", " base64": "base64"} {
		f := &field{raw: []byte("Content-Transfer-Encoding:" + in + "\r\n")}
		if got := cteLabel(f); got != want {
			t.Errorf("%q: label %q, want %q", in, got, want)
		}
	}
}

func TestMatchDelim(t *testing.T) {
	stack := []string{"outer", "in"}
	tests := []struct {
		line    string
		idx     int
		closing bool
		n       int
		ok      bool
	}{
		{"--in\r\n", 1, false, 4, true},
		{"--in--\r\n", 1, true, 6, true},
		{"--in  \t\r\n", 1, false, 7, true},
		{"--outer\n", 0, false, 7, true},
		{"--outer--", 0, true, 9, true},
		{"--inner\r\n", 0, false, 0, false},
		{"..in\r\n", 0, false, 0, false},
		{"--in x\r\n", 0, false, 0, false},
		{"-in\r\n", 0, false, 0, false},
	}
	for _, tt := range tests {
		idx, closing, n, ok := matchDelim([]byte(tt.line), stack)
		if ok != tt.ok || (ok && (idx != tt.idx || closing != tt.closing || n != tt.n)) {
			t.Errorf("%q: got %d %v %d %v", tt.line, idx, closing, n, ok)
		}
	}
}
