package config

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/dkim"
)

// dkimKeys writes an RSA-2048, an Ed25519 and a weak RSA-1024 key.
func dkimKeys(t *testing.T) (rsaFile, edFile, weakFile string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r, _, err := dkim.GenerateKey(dkim.RSASHA256)
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := dkim.GenerateKey(dkim.Ed25519SHA256)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	w := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(weak)})
	return write("rsa.pem", r), write("ed.pem", e), write("weak.pem", w)
}

func TestDKIMConfig(t *testing.T) {
	rsaFile, edFile, _ := dkimKeys(t)
	doc := `[dkim]
resolver = "127.0.0.1:5353"
arc_key = "example.org"

[[dkim.key]]
domain = "Example.org"
selector = "s2026"
key_file = "` + rsaFile + `"

[[dkim.key]]
domain = "example.net"
selector = "ed"
key_file = "` + edFile + `"
algorithm = "ed25519-sha256"

[[route]]
domain = "legacy.example"
dkim_signed = "arc"
dkim_key = "s2026._domainkey.example.org"
`
	c, err := Parse("ferry.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := DKIM{Resolver: "127.0.0.1:5353", ARCKey: "example.org", Keys: []DKIMKey{
		{Domain: "example.org", Selector: "s2026", KeyFile: rsaFile, Algorithm: "rsa-sha256"},
		{Domain: "example.net", Selector: "ed", KeyFile: edFile, Algorithm: "ed25519-sha256"},
	}}
	if !reflect.DeepEqual(c.DKIM, want) {
		t.Errorf("DKIM = %+v, want %+v", c.DKIM, want)
	}
	if c.Routes[0].DKIMSigned != PolicyARC || c.Routes[0].DKIMKey != "s2026._domainkey.example.org" {
		t.Errorf("route = %+v", c.Routes[0])
	}
	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Parse("back.toml", buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(back.DKIM, c.DKIM) || !reflect.DeepEqual(back.Routes, c.Routes) {
		t.Errorf("round trip changed [dkim] or the routes:\n%s", buf.String())
	}
}

func TestDKIMConfigErrors(t *testing.T) {
	rsaFile, edFile, weakFile := dkimKeys(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct{ name, doc, want string }{
		{"missing key file", "[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s\"\nkey_file = \"" + missing + "\"\n",
			"ferry.toml:4: dkim.key.key_file: want a readable rsa-sha256 private key"},
		{"weak key", "\n[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s\"\nkey_file = \"" + weakFile + "\"\n",
			"ferry.toml:5: dkim.key.key_file: want a readable rsa-sha256 private key, got \"" + weakFile + "\": " + weakFile + ": RSA key of 1024 bits is too weak"},
		{"wrong algorithm", "[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s\"\nkey_file = \"" + edFile + "\"\n",
			"ferry.toml:4: dkim.key.key_file: want a readable rsa-sha256 private key"},
		{"no selector", "[[dkim.key]]\ndomain = \"example.org\"\nkey_file = \"" + rsaFile + "\"\n",
			"ferry.toml:1: dkim.key: missing selector"},
		{"unknown dkim_key", "[[route]]\ndomain = \"*\"\ndkim_key = \"example.com\"\n",
			"ferry.toml:3: route.dkim_key: want the domain or selector._domainkey.domain of a [[dkim.key]], got \"example.com\""},
		{"arc without key", "[[route]]\ndomain = \"*\"\ndkim_signed = \"arc\"\n",
			"ferry.toml:3: route.dkim_signed: want a sealing key for \"arc\""},
		{"arc with ed25519", "[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s\"\nkey_file = \"" + edFile + "\"\nalgorithm = \"ed25519-sha256\"\n[[route]]\ndomain = \"*\"\ndkim_signed = \"arc\"\ndkim_key = \"example.org\"\n",
			"ferry.toml:8: route.dkim_signed: want an rsa-sha256 sealing key"},
		{"arc without resolver", "[[dkim.key]]\ndomain = \"example.org\"\nselector = \"s\"\nkey_file = \"" + rsaFile + "\"\n[[route]]\ndomain = \"*\"\ndkim_signed = \"arc\"\ndkim_key = \"example.org\"\n",
			"ferry.toml:7: route.dkim_signed: want [dkim] resolver set"},
		{"bad resolver", "[dkim]\nresolver = \"localhost\"\n", "ferry.toml:2: dkim.resolver: want an address"},
	} {
		_, err := Parse("ferry.toml", []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant %s", c.name, err, c.want)
		}
	}
}
