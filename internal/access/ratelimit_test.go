package access

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// t0 is the start of the injected clock.
func t0() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// newLimiter builds a limiter or fails the test.
func newLimiter(t *testing.T, cfg RateConfig) *RateLimiter {
	t.Helper()
	l, err := NewRateLimiter(cfg)
	if err != nil {
		t.Fatalf("NewRateLimiter: %v", err)
	}
	return l
}

// step is one Allow call at an offset from t0 and its expected outcome.
type step struct {
	c    Client
	at   time.Duration
	want bool
}

// runSteps runs steps in order and checks each decision.
func runSteps(t *testing.T, l *RateLimiter, steps []step) {
	t.Helper()
	for i, s := range steps {
		d := l.Allow(s.c, t0().Add(s.at))
		if d.Allow != s.want {
			t.Errorf("step %d (%s %q at +%s): allow=%v (%s), want %v", i, s.c.IP, s.c.User, s.at, d.Allow, d.Reason, s.want)
			continue
		}
		if !d.Allow && (d.Reply.Code != 450 || d.Reply.Enhanced != "4.7.1" || d.Reason == "") {
			t.Errorf("step %d: refusal %q (%s), want 450 4.7.1 with a reason", i, d.Reply, d.Reason)
		}
	}
}

// ipClient is an unauthenticated client at address s.
func ipClient(s string) Client { return Client{IP: netip.MustParseAddr(s)} }

// TestRatePerIP checks bursts, steady refill and independence of clients.
func TestRatePerIP(t *testing.T) {
	l := newLimiter(t, RateConfig{PerIP: RateLimit{Messages: 3, Interval: time.Minute}})
	a, b := ipClient("192.0.2.1"), ipClient("192.0.2.2")
	runSteps(t, l, []step{
		{a, 0, true}, {a, 0, true}, {a, time.Second, true}, // the burst
		{a, 2 * time.Second, false},
		{b, 2 * time.Second, true}, // another client is not affected
		{a, 19 * time.Second, false},
		{a, 20 * time.Second, true}, // one token back every 20 s
		{a, 21 * time.Second, false},
		{a, 40 * time.Second, true},
		{a, 2 * time.Minute, true}, {a, 2 * time.Minute, true}, {a, 2 * time.Minute, true}, // full again
		{a, 2 * time.Minute, false},
		{ipClient("::ffff:192.0.2.1"), 2 * time.Minute, false}, // the mapped form is the same client
		{Client{IP: netip.MustParseAddr("192.0.2.1"), User: "alice"}, 2 * time.Minute, false},
		{Client{}, 2 * time.Minute, true}, // no address: not limited per IP
	})
}

// TestRateIPv6Slash64 checks that IPv6 clients are counted per /64.
func TestRateIPv6Slash64(t *testing.T) {
	l := newLimiter(t, RateConfig{PerIP: RateLimit{Messages: 2, Interval: time.Hour}})
	runSteps(t, l, []step{
		{ipClient("2001:db8:1:2::1"), 0, true},
		{ipClient("2001:db8:1:2:ffff::9"), 0, true},
		{ipClient("2001:db8:1:2::abcd"), 0, false},
		{ipClient("2001:db8:1:3::1"), 0, true},
		{ipClient("fe80::1%eth0"), 0, true},
	})
}

// TestRatePerUser checks the per-user limit and its interplay with the
// per-IP limit: a refused message consumes nothing.
func TestRatePerUser(t *testing.T) {
	l := newLimiter(t, RateConfig{
		PerIP:   RateLimit{Messages: 2, Interval: time.Hour},
		PerUser: RateLimit{Messages: 1, Interval: time.Hour},
	})
	alice1 := Client{IP: netip.MustParseAddr("192.0.2.1"), User: "alice"}
	alice2 := Client{IP: netip.MustParseAddr("192.0.2.2"), User: "alice"}
	anon1 := ipClient("192.0.2.1")
	runSteps(t, l, []step{
		{alice1, 0, true},
		{alice2, 0, false}, // the user limit follows alice across addresses
		{alice1, 0, false}, // refused by the user limit: the IP token stays
		{anon1, 0, true},   // so the address still has its second message
		{anon1, 0, false},
		{Client{IP: netip.MustParseAddr("192.0.2.3"), User: "bob"}, 0, true},
		{alice2, time.Hour, true},
	})
}

// TestRateExempt checks that exempt networks bypass the per-IP limit but
// not the per-user limit.
func TestRateExempt(t *testing.T) {
	l := newLimiter(t, RateConfig{
		PerIP:   RateLimit{Messages: 1, Interval: time.Hour},
		PerUser: RateLimit{Messages: 1, Interval: time.Hour},
		Exempt:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	inside := ipClient("10.9.8.7")
	steps := []step{{ipClient("192.0.2.1"), 0, true}, {ipClient("192.0.2.1"), 0, false}}
	for i := 0; i < 10; i++ {
		steps = append(steps, step{inside, 0, true})
	}
	steps = append(steps,
		step{Client{IP: inside.IP, User: "alice"}, 0, true},
		step{Client{IP: inside.IP, User: "alice"}, 0, false})
	runSteps(t, l, steps)
}

// TestRateClockBackwards checks that a clock stepping back grants nothing.
func TestRateClockBackwards(t *testing.T) {
	l := newLimiter(t, RateConfig{PerIP: RateLimit{Messages: 1, Interval: time.Minute}})
	a := ipClient("192.0.2.1")
	runSteps(t, l, []step{
		{a, time.Hour, true},
		{a, 0, false},
		{a, -time.Hour, false},
		{a, time.Hour + time.Minute, true},
	})
}

// TestRateBoundedMemory checks that idle entries are dropped and the table
// never grows past MaxEntries.
func TestRateBoundedMemory(t *testing.T) {
	l := newLimiter(t, RateConfig{
		PerIP:      RateLimit{Messages: 1, Interval: time.Minute},
		PerUser:    RateLimit{Messages: 1, Interval: time.Minute},
		MaxEntries: 50,
	})
	for i := 0; i < 1000; i++ {
		c := Client{IP: netip.AddrFrom4([4]byte{192, 0, 2 + byte(i/256), byte(i)}), User: fmt.Sprint("u", i)}
		if d := l.Allow(c, t0()); !d.Allow {
			t.Fatalf("client %d refused: %s", i, d.Reason)
		}
		if n := l.Len(); n > 100 {
			t.Fatalf("after %d clients the limiter holds %d entries, want at most 100", i+1, n)
		}
	}
	// A minute later every entry is idle; each call drops up to maxSweep
	// of them per table, so a few calls empty the table.
	later := t0().Add(time.Minute)
	for i := 0; i < 50/maxSweep+1; i++ {
		l.Allow(ipClient("203.0.113.1"), later)
	}
	if n := l.Len(); n != 1 {
		t.Errorf("after the sweep the limiter holds %d entries, want 1", n)
	}

	// Entries that are still active are not dropped by the sweep.
	l2 := newLimiter(t, RateConfig{PerIP: RateLimit{Messages: 1, Interval: time.Minute}})
	busy := ipClient("192.0.2.9")
	runSteps(t, l2, []step{{busy, 0, true}, {ipClient("192.0.2.10"), 59 * time.Second, true}, {busy, 59 * time.Second, false}})
	if n := l2.Len(); n != 2 {
		t.Errorf("limiter holds %d entries, want 2", n)
	}
}

// TestRateConcurrent checks that concurrent callers never get more than the
// burst in total.
func TestRateConcurrent(t *testing.T) {
	l := newLimiter(t, RateConfig{PerIP: RateLimit{Messages: 50, Interval: time.Hour}})
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if l.Allow(ipClient("192.0.2.1"), t0()).Allow {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 50 {
		t.Errorf("%d of 160 concurrent messages allowed, want exactly 50", allowed)
	}
}

// TestPolicyAllowMessage checks the Policy's delegation to its limiter.
func TestPolicyAllowMessage(t *testing.T) {
	free, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if d := free.AllowMessage(ipClient("192.0.2.1"), t0()); !d.Allow {
			t.Fatalf("message %d refused without limits: %s", i, d.Reason)
		}
	}
	limited, err := New(Config{Rate: RateConfig{PerUser: RateLimit{Messages: 2, Interval: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	bob := Client{IP: netip.MustParseAddr("192.0.2.1"), User: "bob"}
	got := []bool{
		limited.AllowMessage(bob, t0()).Allow,
		limited.AllowMessage(bob, t0()).Allow,
		limited.AllowMessage(bob, t0()).Allow,
		limited.AllowMessage(ipClient("192.0.2.1"), t0()).Allow,
	}
	if fmt.Sprint(got) != "[true true false true]" {
		t.Errorf("AllowMessage sequence = %v, want [true true false true]", got)
	}
}
