package queue

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAdminOperations(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	var events eventLog
	mod := func(c *Config) { c.OnEvent = events.add }
	q := schedQueue(t, dir, clock, mod)
	a := putBody(t, q, testEnv("alice@example.org", "r@one.example"), bodyFor(1, 100))
	clock.Add(time.Hour)
	b := putBody(t, q, testEnv("bob@example.org", "s@two.example", "t@one.example"), bodyFor(2, 100))
	c := putBody(t, q, testEnv("<>", "u@three.example"), bodyFor(3, 100))

	walk := func(f Filter) []string {
		var ids []string
		if err := q.Walk(f, func(m *MessageInfo) bool { ids = append(ids, m.ID); return true }); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all", Filter{}, []string{a, b, c}},
		{"sender", Filter{Sender: "ALICE@"}, []string{a}},
		{"null sender", Filter{Sender: "<>"}, []string{c}},
		{"recipient", Filter{Recipient: "t@one"}, []string{b}},
		{"hop", Filter{Hop: "One.Example"}, []string{a, b}},
		{"age", Filter{MinAge: 30 * time.Minute}, []string{a}},
		{"young", Filter{MaxAge: 30 * time.Minute}, []string{b, c}},
	}
	for _, tt := range tests {
		if got := walk(tt.f); strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Walk %s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// Defer a, then RetryNow makes it due at once.
	l := mustLease(t, q)
	for _, it := range l.Items {
		for _, r := range it.Rcpts {
			q.Update(context.Background(), nil, it.Env.ID, r, deferred("try later"))
		}
	}
	q.Release(l)
	if got := walk(Filter{State: DeferredState}); len(got) == 0 {
		t.Fatal("no deferred messages")
	}
	q.Hold(context.Background(), c)
	if got := walk(Filter{State: HeldState}); len(got) != 1 || got[0] != c {
		t.Fatalf("held: %v", got)
	}
	if n, err := q.RetryHop(context.Background(), "one.example"); err != nil || n != 2 {
		t.Fatalf("RetryHop: %d %v", n, err)
	}
	if err := q.BounceNow(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	fin := events.finished()
	if len(fin) != 1 || fin[0].ID != b || fin[0].Rcpts[0].LastReply.Enhanced != "5.0.0" {
		t.Fatalf("BounceNow events %+v", fin)
	}
	if err := q.Delete(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if len(events.finished()) != 1 {
		t.Fatal("Delete produced an event")
	}
	q.Close()
	q = schedQueue(t, dir, clock, mod)
	defer q.Close()
	if got := walk(Filter{}); len(got) != 1 || got[0] != a {
		t.Fatalf("after restart: %v, want only %s", got, a)
	}
	info, err := q.Show(a)
	if err != nil || info.Rcpts[0].Attempts != 1 || info.Rcpts[0].Next.After(clock.Now()) {
		t.Fatalf("Show after RetryNow and restart: %+v %v", info, err)
	}
}
