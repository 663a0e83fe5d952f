package downgrade

import (
	"bytes"
	"testing"
)

func TestLabelFor(t *testing.T) {
	tests := []struct{ text, declared, want string }{
		{"caf\xc3\xa9", "", "utf-8"},
		{"caf\xc3\xa9", "iso-8859-1", "utf-8"}, // valid UTF-8 wins
		{"caf\xe9", "iso-8859-1", "iso-8859-1"},
		{"caf\xe9", "ISO-8859-15", "iso-8859-15"},
		{"caf\xe9", "latin1", "latin1"},
		{"caf\xe9", "", "unknown-8bit"},
		{"caf\xe9", "us-ascii", "unknown-8bit"},
		{"caf\xe9", "utf-8", "unknown-8bit"},
		{"\x92", "iso-8859-1", "unknown-8bit"}, // a C1 control: windows-1252 really
		{"\x92", "windows-1252", "windows-1252"},
		{"\x81", "windows-1252", "unknown-8bit"},  // unassigned
		{"\xa4\xa2", "shift_jis", "unknown-8bit"}, // multi-octet: never a label
		{"\xe9", "x-no-such-charset", "unknown-8bit"},
	}
	for _, tt := range tests {
		if got := labelFor([]byte(tt.text), tt.declared); got != tt.want {
			t.Errorf("labelFor(%q, %q) = %q, want %q", tt.text, tt.declared, got, tt.want)
		}
	}
}

func TestEncodeParams(t *testing.T) {
	tests := []struct{ in, cs, want string }{
		{" attachment; filename=\"R\xc3\xa9sum\xc3\xa9.pdf\"", "", ` attachment; filename*=utf-8''R%C3%A9sum%C3%A9.pdf`},
		{" text/plain; charset=iso-8859-1; name=caf\xe9.txt", "iso-8859-1", ` text/plain; charset=iso-8859-1; name*=iso-8859-1''caf%E9.txt`},
		{" attachment; filename=caf\xe9.txt", "", ` attachment; filename*=unknown-8bit''caf%E9.txt`},
		// An extended value keeps its charset and language.
		{" attachment; filename*=iso-8859-1'fr'caf\xe9", "", ` attachment; filename*=iso-8859-1'fr'caf%E9`},
		// Sections are joined, 7-bit parameters stay as written.
		{" attachment; size=3; filename*0=\"a b\"; filename*1*=%C3%A9; filename*2=\"\xc3\xa9\"", "", ` attachment; size=3; filename*=utf-8''a%20b%C3%A9%C3%A9`},
		// Beside an RFC 2231 form of the same parameter, a plain 8-bit
		// value is dropped; a plain 7-bit one stays.
		{" attachment; filename=\"R\xc3\xa9sum\xc3\xa9.pdf\"; filename*=utf-8''R%C3%A9sum%C3%A9.pdf", "", " attachment; filename*=utf-8''R%C3%A9sum%C3%A9.pdf"},
		{" attachment; filename=\"=?utf-8?Q?R=C3=A9sum=C3=A9.pdf?=\"; filename*=utf-8''R\xc3\xa9sum\xc3\xa9.pdf", "", " attachment; filename=\"=?utf-8?Q?R=C3=A9sum=C3=A9.pdf?=\"; filename*=utf-8''R%C3%A9sum%C3%A9.pdf"},
		// 8-bit in a comment only: an encoded-word.
		{" attachment (pi\xc3\xa8ce); filename=a.txt", "", ` attachment (=?utf-8?B?cGnDqGNl?=); filename=a.txt`},
		// Tspecials and '%' are escaped.
		{" attachment; filename=\"\xc3\xa9 (1)%;.txt\"", "", ` attachment; filename*=utf-8''%C3%A9%20%281%29%25%3B.txt`},
	}
	for _, tt := range tests {
		got, err := encodeParams([]byte(tt.in), tt.cs)
		if err != nil || string(got) != tt.want {
			t.Errorf("encodeParams(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	long := ` attachment; filename="` + string(bytes.Repeat([]byte("\xc3\xa9"), 40)) + `"`
	got, err := encodeParams([]byte(long), "")
	if err != nil || !bytes.Contains(got, []byte("; filename*0*=utf-8''%C3%A9")) || !bytes.Contains(got, []byte("; filename*1*=")) {
		t.Errorf("long value: %q, %v", got, err)
	}
	for _, bad := range []string{" multipart/mixed; boundary=\"\xc3\xa9\"", " text/pl\xc3\xa9in", " x;\xe9=a", " x; name=\"a\"\xe9"} {
		if _, err := encodeParams([]byte(bad), ""); err == nil {
			t.Errorf("encodeParams(%q) did not fail", bad)
		}
	}
}

func TestEncodeUnstructuredBesideEncodedWords(t *testing.T) {
	tests := []struct{ in, want string }{
		// The white space between an encoded-word and the new span is
		// kept inside the span, or readers would drop it.
		{" Re: =?utf-8?Q?caf=C3=A9?= cr\xc3\xa8me", ` Re: =?utf-8?Q?caf=C3=A9?= =?utf-8?Q?_cr=C3=A8me?=`},
		{" cr\xc3\xa8me =?utf-8?Q?caf=C3=A9?= x", ` =?utf-8?Q?cr=C3=A8me_?= =?utf-8?Q?caf=C3=A9?= x`},
		// Raw 8-bit right after an encoded-word.
		{" =?utf-8?Q?a?=\xc3\xa9 b", ` =?utf-8?Q?a?= =?utf-8?B?w6k=?= b`},
		// Raw 8-bit inside a Q encoded-word is escaped in place.
		{" x =?utf-8?Q?caf\xc3\xa9?= y", ` x =?utf-8?Q?caf=C3=A9?= y`},
		// White space between two existing encoded-words stays invisible.
		{" =?utf-8?Q?a?= =?utf-8?Q?b?= \xc3\xa9", ` =?utf-8?Q?a?= =?utf-8?Q?b?= =?utf-8?B?IMOp?=`},
	}
	for _, tt := range tests {
		if got := encodeUnstructured([]byte(tt.in), ""); string(got) != tt.want {
			t.Errorf("encodeUnstructured(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestEncodeStructuredComments(t *testing.T) {
	got, err := encodeComments([]byte(" Mon, 1 Jan 2024 10:00:00 +0100 (Mitteleurop\xe4ische Zeit)"), "iso-8859-1")
	if want := " Mon, 1 Jan 2024 10:00:00 +0100 (=?iso-8859-1?Q?Mitteleurop=E4ische_Zeit?=)"; err != nil || string(got) != want {
		t.Errorf("Date comment: %q, %v; want %q", got, err, want)
	}
	if _, err := encodeComments([]byte(" <caf\xc3\xa9@example.org>"), ""); err == nil {
		t.Error("8-bit message ID accepted")
	}
	got, err = encodeAddressList([]byte(" Liste fran\xc3\xa7aise <liste.example.org>"), "")
	if want := " =?utf-8?Q?Liste_fran=C3=A7aise?= <liste.example.org>"; err != nil || string(got) != want {
		t.Errorf("List-Id: %q, %v; want %q", got, err, want)
	}
	got, err = encodeKeywords([]byte(" caf\xc3\xa9, plain"), "")
	if want := " =?utf-8?B?Y2Fmw6k=?=, plain"; err != nil || string(got) != want {
		t.Errorf("Keywords: %q, %v; want %q", got, err, want)
	}
}

func TestReadHeaderObsFWSAndMboxFrom(t *testing.T) {
	in := "From a@example.org Mon Jan  1 10:00:00 2024\r\nSubject: x\r\n \r\n\t\r\nTo: b@example.org\r\n\r\nbody\r\n"
	src := &lineSrc{br: bufioReader(in)}
	h, err := readHeader(src, 1<<16, "", nil, true, func(string) { t.Error("repair reported") })
	if err != nil {
		t.Fatal(err)
	}
	if len(h.fields) != 3 || h.fields[0].lname != "" || string(h.fields[1].raw) != "Subject: x\r\n \r\n\t\r\n" || h.fields[2].lname != "to" {
		t.Fatalf("fields %q", h.fields)
	}
	if got := string(h.bytes()); got != in[:len(in)-len("body\r\n")] {
		t.Errorf("header bytes %q", got)
	}
	// Not at the top of a message, a From line is no field.
	src = &lineSrc{br: bufioReader("From a b\r\nX: y\r\n\r\n")}
	h, err = readHeader(src, 1<<16, "1", nil, false, func(string) {})
	if err != nil || len(h.fields) != 0 || !h.inserted {
		t.Errorf("From line in a part header: %q, %v", h.fields, err)
	}
}
