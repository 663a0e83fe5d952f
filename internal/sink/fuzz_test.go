package sink

import (
	"reflect"
	"testing"
)

// FuzzParseRule checks that a rule that parses formats to text that parses
// back to the same rule, and that its reply is one the server can send.
func FuzzParseRule(f *testing.F) {
	f.Add("RCPT:*@bad.example=550 5.1.1 no such user")
	f.Add("CONNECT:3=421 4.7.0 busy")
	f.Add("MAIL#2:*=451 4.3.0 try later")
	f.Add("END:*=554")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		if r.Reply.Code < 200 || r.Reply.Code > 599 || (r.Reply.Enhanced != "" && !r.Reply.Enhanced.Valid()) {
			t.Fatalf("ParseRule(%q) gave reply %+v", s, r.Reply)
		}
		again, err := ParseRule(r.String())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("ParseRule(%q) = %+v; its String %q parses to %+v, %v", s, r, r.String(), again, err)
		}
	})
}
