package dsn

import (
	"strings"
	"testing"
)

// BenchmarkBuild measures one failure report: a small 7-bit original
// returned as it is, and a 90 KiB 8-bit original that must be converted to
// 7-bit MIME before it can be returned.
func BenchmarkBuild(b *testing.B) {
	c := goldenCases()[0]
	big8 := original8bit + strings.Repeat(strings.Repeat("Voil\xc3\xa0 l'\xc3\xa9t\xc3\xa9, d\xc3\xa9j\xc3\xa0. ", 3)+"\r\n", 1200)
	for _, bc := range []struct {
		name, original string
	}{{"ascii-1KiB", originalASCII}, {"8bit-90KiB", big8}} {
		if len(bc.original) > DefaultMaxReturnSize {
			b.Fatalf("%s: %d octets, over the return cap", bc.name, len(bc.original))
		}
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.original)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(c.report, strings.NewReader(bc.original)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
