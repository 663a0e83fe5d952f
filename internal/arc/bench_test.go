package arc_test

import (
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/arc"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/dkim/dkimtest"
)

// BenchmarkSeal measures adding one ARC set (two RSA-2048 signatures) to a
// 4 KiB message, against one DKIM signature with the same key, measured in
// the same run:
//
//	go test -run - -bench Seal -benchtime 2s ./internal/arc
func BenchmarkSeal(b *testing.B) {
	k, _ := dkimtest.NewKey(b, nil, "example.org", "arc", dkim.RSASHA256)
	m := msg + strings.Repeat("Grüße aus Wien: déjà vu, à bientôt, smørrebrød und Zürich.\r\n", 64)
	b.Run("baseline-dkim-sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := dkim.Sign(strings.NewReader(m), k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("arc-set", func(b *testing.B) {
		s := &arc.Sealer{Key: k, AuthServID: "relay.example.org"}
		for b.Loop() {
			if _, err := s.Seal(strings.NewReader(m), "dkim=pass header.d=example.org", arc.None); err != nil {
				b.Fatal(err)
			}
		}
	})
}
