package smtp

import (
	"bufio"
	"reflect"
	"strings"
	"testing"
)

func TestParseEHLOReply(t *testing.T) {
	in := "250-mx.example.com Hello client\r\n" +
		"250-size 10240000\r\n" +
		"250-PIPELINING\r\n" +
		"250-AUTH PLAIN login\r\n" +
		"250-AUTH=LOGIN\r\n" +
		"250-8BITMIME\r\n" +
		"250-X-EXPS=LOGIN\r\n" +
		"250-bad_keyword\r\n" +
		"250-ENHANCEDSTATUSCODES  \r\n" +
		"250 HELP\r\n"
	r, err := ReadReply(bufio.NewReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	ext := ParseEHLOReply(r)
	want := Extensions{
		"SIZE": "10240000", "PIPELINING": "", "AUTH": "PLAIN login", "8BITMIME": "",
		"ENHANCEDSTATUSCODES": "", "HELP": "",
	}
	if !reflect.DeepEqual(ext, want) {
		t.Errorf("got %#v, want %#v", ext, want)
	}
	if !ext.Has("pipelining") || ext.Has("CHUNKING") {
		t.Error("Has is wrong")
	}
	if ext.Size() != 10240000 {
		t.Errorf("Size = %d", ext.Size())
	}
	if got := ext.AuthMechanisms(); !reflect.DeepEqual(got, []string{"PLAIN", "LOGIN"}) {
		t.Errorf("AuthMechanisms = %v", got)
	}
	if got := ext.Param("Auth"); got != "PLAIN login" {
		t.Errorf("Param(Auth) = %q", got)
	}
	if got := ext.Keywords(); !reflect.DeepEqual(got, []string{"8BITMIME", "AUTH", "ENHANCEDSTATUSCODES", "HELP", "PIPELINING", "SIZE"}) {
		t.Errorf("Keywords = %v", got)
	}
}

func TestEHLOExtensionsEdgeCases(t *testing.T) {
	tests := []struct {
		r    Reply
		size int64
		auth []string
		n    int
	}{
		{NewReply(250, "", "mx"), 0, nil, 0},
		{NewReply(502, "", "not here"), 0, nil, 0},
		{NewReply(250, "", "mx", "SIZE"), 0, nil, 1},
		{NewReply(250, "", "mx", "SIZE 0"), 0, nil, 1},
		{NewReply(250, "", "mx", "SIZE -5"), 0, nil, 1},
		{NewReply(250, "", "mx", "SIZE abc"), 0, nil, 1},
		{NewReply(250, "", "mx", "AUTH=LOGIN PLAIN"), 0, []string{"LOGIN", "PLAIN"}, 1},
		{NewReply(250, "", "mx", "AUTH"), 0, nil, 1},
		{NewReply(250, "", "mx", "SIZE 100", "SIZE 200"), 100, nil, 1},
	}
	for _, tc := range tests {
		ext := ParseEHLOReply(tc.r)
		if ext.Size() != tc.size || !reflect.DeepEqual(ext.AuthMechanisms(), tc.auth) || len(ext) != tc.n {
			t.Errorf("%v: size %d auth %v n %d", tc.r, ext.Size(), ext.AuthMechanisms(), len(ext))
		}
	}
}

func TestNewEHLOReply(t *testing.T) {
	r := NewEHLOReply("relay.example", "Hello [192.0.2.1]", []string{"SIZE 10240000", "8BITMIME", "SMTPUTF8"})
	want := "250-relay.example Hello [192.0.2.1]\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
	if got := string(r.Format(true)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := string(NewEHLOReply("relay.example", "", nil).Format(true)); got != "250 relay.example\r\n" {
		t.Errorf("no keywords: %q", got)
	}
	ext := ParseEHLOReply(r)
	if ext.Size() != 10240000 || !ext.Has("8BITMIME") || !ext.Has("SMTPUTF8") || len(ext) != 3 {
		t.Errorf("round trip: %v", ext)
	}
}
