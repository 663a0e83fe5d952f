package access

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// BenchmarkRcpt measures one RCPT decision per kind of path.
func BenchmarkRcpt(b *testing.B) {
	p := testPolicy(b)
	for _, bc := range []struct {
		name string
		rcpt smtp.Path
	}{
		{"ascii", smtp.Path{LocalPart: "user", Domain: "Company.Example"}},
		{"unicode", smtp.Path{LocalPart: "user", Domain: "bücher.example"}},
		{"alabel", smtp.Path{LocalPart: "user", Domain: "xn--bcher-kva.example"}},
		{"denied", smtp.Path{LocalPart: "user", Domain: "victim.example"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := outsideClient()
			for b.Loop() {
				p.Rcpt(c, bc.rcpt)
			}
		})
	}
}

// BenchmarkRateLimiter measures AllowMessage over many client addresses.
func BenchmarkRateLimiter(b *testing.B) {
	l, err := NewRateLimiter(RateConfig{PerIP: RateLimit{Messages: 100, Interval: time.Minute}, MaxEntries: 1000})
	if err != nil {
		b.Fatal(err)
	}
	now := t0()
	i := 0
	for b.Loop() {
		i++
		l.Allow(Client{IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}, now.Add(time.Duration(i)*time.Millisecond))
	}
}
