package dkim_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/downgrade"
)

// benchMessage is a typical 8-bit text message of about 4 KiB.
func benchMessage() []byte {
	var b bytes.Buffer
	b.WriteString("From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: benchmark\r\nDate: Thu, 3 Dec 2026 09:00:00 +0000\r\n" +
		"Message-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for b.Len() < 4096 {
		b.WriteString("Grüße aus Wien: déjà vu, à bientôt, smørrebrød und Zürich.\r\n")
	}
	return b.Bytes()
}

// BenchmarkSign measures the cost of one DKIM signature over a 4 KiB
// message for RSA-2048 and Ed25519, against the conversion of the same
// message to 7-bit (the step before signing at delivery) as the baseline
// measured in the same run:
//
//	go test -run - -bench Sign -benchtime 2s ./internal/dkim
func BenchmarkSign(b *testing.B) {
	msg := benchMessage()
	b.Run("baseline-convert", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, err := downgrade.Convert(io.Discard, bytes.NewReader(msg), downgrade.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, alg := range []dkim.Algorithm{dkim.RSASHA256, dkim.Ed25519SHA256} {
		name := map[dkim.Algorithm]string{dkim.RSASHA256: "rsa-2048", dkim.Ed25519SHA256: "ed25519"}[alg]
		b.Run(name, func(b *testing.B) {
			_, signer, err := dkim.GenerateKey(alg)
			if err != nil {
				b.Fatal(err)
			}
			k := &dkim.Key{Domain: "example.org", Selector: "bench", Algorithm: alg, Signer: signer}
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				sig, err := dkim.Sign(bytes.NewReader(msg), k)
				if err != nil || !strings.HasPrefix(sig, "DKIM-Signature:") {
					b.Fatal(sig, err)
				}
			}
		})
	}
}
