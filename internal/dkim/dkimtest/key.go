package dkimtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrymta/ferry/internal/dkim"
)

// NewKey makes a fresh key for domain and selector, writes it (PKCS #8
// PEM, mode 0600) into the test's directory, loads it as Ferry does, and
// returns it with its DNS record value. With ns not nil the record is
// published there.
func NewKey(t testing.TB, ns *DNS, domain, selector string, alg dkim.Algorithm) (*dkim.Key, string) {
	t.Helper()
	pemData, signer, err := dkim.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), selector+"."+domain+".pem")
	if err := os.WriteFile(file, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := dkim.LoadKey(domain, selector, alg, file)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dkim.KeyRecord(signer)
	if err != nil {
		t.Fatal(err)
	}
	if ns != nil {
		ns.SetTXT(k.Name(), rec)
	}
	return k, rec
}
