package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name, in string
		want     Reply
		rest     string
	}{
		{"single", "250 Ok\r\n", Reply{Code: 250, Lines: []string{"Ok"}}, ""},
		{"enhanced", "550 5.1.1 User unknown\r\nNEXT", Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"User unknown"}}, "NEXT"},
		{"enhanced class mismatch", "250 5.1.1 odd\r\n", Reply{Code: 250, Lines: []string{"5.1.1 odd"}}, ""},
		{"not an enhanced code", "250 2.0 Ok\r\n", Reply{Code: 250, Lines: []string{"2.0 Ok"}}, ""},
		{"enhanced leading zero", "250 2.01.0 Ok\r\n", Reply{Code: 250, Lines: []string{"2.01.0 Ok"}}, ""},
		{"enhanced only", "250 2.0.0\r\n", Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{""}}, ""},
		{"code only", "250\r\n", Reply{Code: 250, Lines: []string{""}}, ""},
		{"bare LF", "221 Bye\n", Reply{Code: 221, Lines: []string{"Bye"}}, ""},
		{"multi-line EHLO", "250-mx.example Hello\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 HELP\r\nX",
			Reply{Code: 250, Lines: []string{"mx.example Hello", "SIZE 1000", "8BITMIME", "HELP"}}, "X"},
		{"multi-line enhanced", "452-4.5.3 Too many\r\n452 4.5.3 recipients\r\n",
			Reply{Code: 452, Enhanced: "4.5.3", Lines: []string{"Too many", "recipients"}}, ""},
		{"multi-line empty middle", "250-a\r\n250-\r\n250 b\r\n", Reply{Code: 250, Lines: []string{"a", "", "b"}}, ""},
		{"two replies", "250 one\r\n250 two\r\n", Reply{Code: 250, Lines: []string{"one"}}, "250 two\r\n"},
		{"8-bit text", "550 caf\xc3\xa9\r\n", Reply{Code: 550, Lines: []string{"caf\xc3\xa9"}}, ""},
	}
	for _, tc := range tests {
		br := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		got, err := ReadReply(br)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.name, got, tc.want)
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != tc.rest {
			t.Errorf("%s: rest %q, want %q", tc.name, rest, tc.rest)
		}
	}
}

func TestReadReplyMalformed(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"empty line", "\r\n", ErrMalformedReply},
		{"short code", "25 Ok\r\n", ErrMalformedReply},
		{"letters", "abc Ok\r\n", ErrMalformedReply},
		{"class 1", "150 Ok\r\n", ErrMalformedReply},
		{"class 6", "650 Ok\r\n", ErrMalformedReply},
		{"bad separator", "250_Ok\r\n", ErrMalformedReply},
		{"code changes", "250-a\r\n251 b\r\n", ErrMalformedReply},
		{"garbage continuation", "250-a\r\nhello\r\n", ErrMalformedReply},
		{"eof before", "", io.EOF},
		{"eof mid-line", "250 O", io.ErrUnexpectedEOF},
		{"eof mid-reply", "250-a\r\n", io.ErrUnexpectedEOF},
		{"too long", "250 " + strings.Repeat("x", maxReplyLine+10) + "\r\n", ErrMalformedReply},
		{"too many lines", strings.Repeat("250-x\r\n", maxReplyLines+1) + "250 x\r\n", ErrMalformedReply},
	}
	for _, tc := range tests {
		_, err := ReadReply(bufio.NewReader(strings.NewReader(tc.in)))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestReplyFormat(t *testing.T) {
	tests := []struct {
		r        Reply
		enhanced bool
		want     string
	}{
		{NewReply(250, EnhOK, "Ok"), true, "250 2.0.0 Ok\r\n"},
		{NewReply(250, EnhOK, "Ok"), false, "250 Ok\r\n"},
		{NewReply(250, "", "mx", "SIZE 10", "HELP"), true, "250-mx\r\n250-SIZE 10\r\n250 HELP\r\n"},
		{NewReply(452, EnhTooManyRcpts, "a", "b"), true, "452-4.5.3 a\r\n452 4.5.3 b\r\n"},
		{NewReply(354, "", "Go"), true, "354 Go\r\n"},
		{NewReply(250, ""), true, "250\r\n"},
		{NewReply(250, EnhOK), true, "250 2.0.0\r\n"},
		{NewReply(250, "", "a", ""), true, "250-a\r\n250\r\n"},
		{NewReply(550, EnhNotAuthorized, "x\r\n250 injected"), true, "550 5.7.1 x  250 injected\r\n"},
		{NewReply(7, "", "bad"), false, "451 bad\r\n"},
		{NewReply(600, "", "bad"), false, "451 bad\r\n"},
		{NewReply(550, "5.1.1\r\n250 x", "bad"), true, "550 bad\r\n"},
	}
	for _, tc := range tests {
		got := string(tc.r.Format(tc.enhanced))
		if got != tc.want {
			t.Errorf("%#v.Format(%v) = %q, want %q", tc.r, tc.enhanced, got, tc.want)
		}
	}
	var b bytes.Buffer
	n, err := NewReply(550, EnhBadMailbox, "User unknown").WriteTo(&b)
	if err != nil || n != int64(b.Len()) || b.String() != "550 5.1.1 User unknown\r\n" {
		t.Errorf("WriteTo: %d, %v, %q", n, err, b.String())
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, r := range []Reply{
		NewReply(250, EnhOK, "Ok: queued as ABC123"), NewReply(552, EnhTooBigForSystem, "Message size exceeds fixed maximum message size"),
		NewReply(354, "", "End data with <CR><LF>.<CR><LF>"), NewReply(452, EnhTooManyRcpts, "Too many recipients"),
		NewEHLOReply("mx.example", "Hello", []string{"SIZE 1000", "8BITMIME"}),
	} {
		got, err := ReadReply(bufio.NewReader(bytes.NewReader(r.Format(true))))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %#v: %#v, %v", r, got, err)
		}
	}
}

func TestReplyClass(t *testing.T) {
	if c := NewReply(452, "").Class(); c != 4 {
		t.Errorf("Class = %d", c)
	}
	tests := []struct {
		e     EnhancedCode
		class int
	}{
		{"2.0.0", 2}, {"4.5.3", 4}, {"5.1.10", 5}, {"5.7.30", 5}, {"5.999.999", 5},
		{"3.0.0", 0}, {"5.1", 0}, {"5.1.1.1", 0}, {"5.01.1", 0}, {"5.1000.1", 0}, {"", 0}, {"5.a.1", 0},
	}
	for _, tc := range tests {
		if got := tc.e.Class(); got != tc.class {
			t.Errorf("%q.Class() = %d, want %d", tc.e, got, tc.class)
		}
	}
	if got := EnhInvalidParams.WithClass(4); got != "4.5.4" {
		t.Errorf("WithClass(4) = %q", got)
	}
	if got := EnhNullMX.WithClass(3); got != EnhNullMX {
		t.Errorf("WithClass(3) = %q", got)
	}
}
