package deliver

import (
	"math/rand/v2"
	"testing"
)

// TestGuardCheckEveryOffset: the guard finds a NUL, and with deny8 an octet
// over 127, at every offset of buffers of every length up to 40, and
// refuses nothing else.
func TestGuardCheckEveryOffset(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 40; n++ {
		clean := make([]byte, n)
		for i := range clean {
			clean[i] = byte(1 + r.IntN(127)) // 1..127
		}
		for _, deny8 := range []bool{false, true} {
			g := guardWriter{deny8: deny8}
			if err := g.check(clean); err != nil {
				t.Fatalf("len %d deny8 %v: clean content refused", n, deny8)
			}
			for i := range n {
				for _, bad := range []byte{0, 128, 200, 255} {
					b := append([]byte(nil), clean...)
					b[i] = bad
					want := bad == 0 || deny8
					if got := g.check(b) != nil; got != want {
						t.Fatalf("len %d deny8 %v: octet %d at %d refused %v, want %v", n, deny8, bad, i, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkGuardCheck checks 64 KiB of 7-bit text, as a DATA transfer to a
// hop without 8BITMIME does.
func BenchmarkGuardCheck(b *testing.B) {
	p := make([]byte, 64<<10)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	g := guardWriter{deny8: true}
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if err := g.check(p); err != nil {
			b.Fatal(err)
		}
	}
}
