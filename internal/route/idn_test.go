package route

import "testing"

// TestLookupUnicodeForms: a route written in one spelling of a name is found
// for every other spelling (U-label, case, A-label, ideographic and
// full-width full stops, full-width letters, trailing dots), never the "*"
// route, and so is its subdomain route.
func TestLookupUnicodeForms(t *testing.T) {
	forms := []string{
		"bücher.example",
		"BÜCHER.EXAMPLE",
		"xn--bcher-kva.example",
		"bücher。example",
		"ｂüｃｈｅｒ．ｅｘａｍｐｌｅ",
		"bücher.example.",
		"XN--BCHER-KVA.EXAMPLE.",
		"bücher。example。",
	}
	for _, pattern := range []string{"bücher.example", "xn--bcher-kva.example", "BÜCHER。EXAMPLE."} {
		tab, err := NewTable(Options{},
			mustRoute(t, pattern+"=[127.0.0.1]:2526"),
			mustRoute(t, "."+pattern+"=[10.0.0.1]"),
			mustRoute(t, "*=[10.9.9.9]"),
		)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range forms {
			if got := tab.Lookup(f); len(got.Hops) != 1 || got.Hops[0].Host != "127.0.0.1" {
				t.Errorf("route %q: Lookup(%q) = %s, want the domain's own route", pattern, f, got)
			}
			if got := tab.Lookup("mail." + f); len(got.Hops) != 1 || got.Hops[0].Host != "10.0.0.1" {
				t.Errorf("route %q: Lookup(%q) = %s, want the subdomain route", pattern, "mail."+f, got)
			}
		}
	}
}
