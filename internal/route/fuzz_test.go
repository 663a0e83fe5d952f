package route

import (
	"reflect"
	"testing"
)

// FuzzParseRouteFlag checks that the route parser never panics and that
// every next hop it accepts formats to a string that parses back to it.
func FuzzParseRouteFlag(f *testing.F) {
	for _, s := range []string{
		"company.example=[127.0.0.1]:2526",
		"*=[smarthost.example]:587;tls=required;auth=u:p",
		".example.org=a.example:26,[b.example]",
		"v6.example=[2001:db8::1]:25",
		"x.example=direct;eightbit=bounce;discard=8BITMIME+CHUNKING",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRouteFlag(s)
		if err != nil {
			return
		}
		for _, h := range r.Hops {
			back, err := ParseNextHop(h.String())
			if err != nil {
				t.Fatalf("%q: hop %+v formats as %q, which does not parse: %v", s, h, h.String(), err)
			}
			if !reflect.DeepEqual(back, h) {
				t.Fatalf("%q: hop %+v round-trips to %+v", s, h, back)
			}
		}
		if _, err := NewTable(Options{}, r); err != nil {
			// A parsed route is a valid table entry.
			t.Fatalf("%q: parsed but NewTable refuses it: %v", s, err)
		}
	})
}
