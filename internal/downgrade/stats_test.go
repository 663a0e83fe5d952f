package downgrade

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// naiveStats is the obvious octet-by-octet reading of the rules.
func naiveStats(b []byte) (high, nul, bareCR, bareLF, long int64) {
	line := 0
	for i, c := range b {
		switch {
		case c >= 0x80:
			high++
		case c == 0:
			nul++
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			bareCR++
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			bareLF++
		}
		if c == '\n' {
			n := line
			if i > 0 && b[i-1] == '\r' {
				n--
			}
			if n > maxLine {
				long++
			}
			line = 0
			continue
		}
		line++
	}
	if line > maxLine {
		long++
	}
	return
}

// TestStatsChunked feeds random bodies in random chunks and compares with
// the naive count.
func TestStatsChunked(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("ab\r\n\x00\xc3\xa9 ")
	for iter := 0; iter < 2000; iter++ {
		n := rng.IntN(200)
		if iter%100 == 0 {
			n = 3000
		}
		b := make([]byte, n)
		run := rng.IntN(3)
		for i := range b {
			if run == 0 && rng.IntN(50) != 0 {
				b[i] = 'x' // long lines
			} else {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		s := stats{checkUTF8: true}
		for rest := b; len(rest) > 0; {
			k := 1 + rng.IntN(len(rest))
			s.Write(rest[:k])
			rest = rest[k:]
		}
		s.finish()
		h, z, cr, lf, lg := naiveStats(b)
		if s.high != h || s.nul != z || s.bareCR != cr || s.bareLF != lf || s.long != lg || s.n != int64(n) {
			t.Fatalf("%q: got high %d nul %d CR %d LF %d long %d, want %d %d %d %d %d",
				b, s.high, s.nul, s.bareCR, s.bareLF, s.long, h, z, cr, lf, lg)
		}
		if s.validUTF8() != utf8.Valid(b) {
			t.Fatalf("%q: validUTF8 = %v", b, s.validUTF8())
		}
	}
}
