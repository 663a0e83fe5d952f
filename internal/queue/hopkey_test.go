package queue

import "testing"

// TestHopKeyUnicodeForms: recipients at every spelling of one domain share
// one next hop, named by its A-label: the key routes are looked up by.
func TestHopKeyUnicodeForms(t *testing.T) {
	q := mustOpen(t, testConfig(t.TempDir(), nil, nil))
	defer q.Close()
	forms := []string{"a@bücher.example", "b@BÜCHER.EXAMPLE", "c@xn--bcher-kva.example", "d@bücher。example",
		"e@ｂüｃｈｅｒ．ｅｘａｍｐｌｅ", "f@bücher.example.", "g@XN--BCHER-KVA.EXAMPLE."}
	id := putBody(t, q, testEnv("s@example.org", forms...), bodyFor(1, 100))
	info, err := q.Show(id)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range info.Rcpts {
		if r.Hop != "xn--bcher-kva.example" {
			t.Errorf("recipient %s: hop %q, want xn--bcher-kva.example", forms[i], r.Hop)
		}
	}
	if n := len(q.hops); n != 1 {
		t.Errorf("%d next hops for one domain, want 1", n)
	}
}
