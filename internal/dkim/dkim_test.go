package dkim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/dkim/dkimtest"
)

const testMsg = "From: Alice <alice@example.org>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n" +
	"Date: Thu, 3 Dec 2026 09:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Gr=C3=BC=C3=9Fe  aus   Wien \r\n\r\n\r\n"

// newKey makes a key (see dkimtest.NewKey).
func newKey(t *testing.T, domain, selector string, alg dkim.Algorithm) (*dkim.Key, string) {
	t.Helper()
	return dkimtest.NewKey(t, nil, domain, selector, alg)
}

func TestSignVerifiesWithGoAndDkimpy(t *testing.T) {
	dkimtest.NeedDkimpy(t)
	ns := dkimtest.StartDNS(t)
	keys := map[string]string{}
	var signed [][]byte
	for _, alg := range []dkim.Algorithm{dkim.RSASHA256, dkim.Ed25519SHA256} {
		k, rec := newKey(t, "example.org", "s-"+strings.Split(string(alg), "-")[0], alg)
		ns.SetTXT(k.Name(), rec)
		keys[k.Name()] = rec
		sig, err := dkim.Sign(strings.NewReader(testMsg), k)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sig, "c=relaxed/relaxed") {
			t.Errorf("%s: signature %q is not relaxed/relaxed", alg, sig)
		}
		msg := []byte(sig + testMsg)
		signed = append(signed, msg)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := dkim.Verify(ctx, bytes.NewReader(msg), dkim.NewNetResolver(ns.Addr))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 || res[0].Result != "pass" || res[0].Domain != "example.org" || res[0].Selector != k.Selector {
			t.Errorf("%s: Verify = %+v, want one pass", alg, res)
		}
	}
	for i, v := range dkimtest.VerifyBytes(t, keys, signed...) {
		if len(v.DKIM) != 1 || !v.DKIM[0].OK {
			t.Errorf("message %d: dkimpy says %+v", i, v)
		}
	}
	if ns.Queries() == 0 {
		t.Error("the DNS server answered no query")
	}
}

func TestOversigning(t *testing.T) {
	k, _ := newKey(t, "example.org", "s1", dkim.Ed25519SHA256)
	sig, err := dkim.Sign(strings.NewReader(testMsg), k)
	if err != nil {
		t.Fatal(err)
	}
	h := dkim.Tags(dkim.Field{Raw: sig}.Value())["h"]
	for _, name := range []string{"From", "Subject", "To", "Date"} {
		n := 0
		for _, f := range strings.Split(h, ":") {
			if f == name {
				n++
			}
		}
		if n != 2 {
			t.Errorf("h=%s lists %s %d times, want 2 (once oversigned)", h, name, n)
		}
	}
	if strings.Contains(h, "Reply-To") {
		t.Errorf("h=%s lists Reply-To, which the message lacks and which is not oversigned", h)
	}
	// An added Subject breaks the signature.
	ns := dkimtest.StartDNS(t)
	rec, _ := dkim.KeyRecord(k.Signer)
	ns.SetTXT(k.Name(), rec)
	msg := sig + "Subject: another\r\n" + testMsg
	res, err := dkim.Verify(context.Background(), strings.NewReader(msg), dkim.NewNetResolver(ns.Addr))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Result != "fail" {
		t.Errorf("with a Subject added: %+v, want fail", res)
	}
}

func TestVerifyResults(t *testing.T) {
	ns := dkimtest.StartDNS(t)
	k, rec := newKey(t, "example.org", "s1", dkim.Ed25519SHA256)
	ns.SetTXT(k.Name(), rec)
	sig, err := dkim.Sign(strings.NewReader(testMsg), k)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newKey(t, "example.com", "gone", dkim.Ed25519SHA256)
	sig2, err := dkim.Sign(strings.NewReader(testMsg), other)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(testMsg, "Wien", "Graz", 1)
	res, err := dkim.Verify(context.Background(), strings.NewReader(sig2+sig+changed), dkim.NewNetResolver(ns.Addr))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Result != "permerror" || res[0].Domain != "example.com" || res[1].Result != "fail" || !strings.Contains(res[1].Reason, "body hash") {
		t.Errorf("Verify = %+v, want permerror (no key) then fail (body hash)", res)
	}
	res, err = dkim.Verify(context.Background(), strings.NewReader(testMsg), dkim.NewNetResolver(ns.Addr))
	if err != nil || len(res) != 0 {
		t.Errorf("unsigned: %+v, %v", res, err)
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakFile := filepath.Join(dir, "weak.pem")
	os.WriteFile(weakFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(weak)}), 0o600)
	edPEM, _, _ := dkim.GenerateKey(dkim.Ed25519SHA256)
	edFile := filepath.Join(dir, "ed.pem")
	os.WriteFile(edFile, edPEM, 0o600)
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a key\n"), 0o600)
	for _, c := range []struct {
		file string
		alg  dkim.Algorithm
		want string
	}{
		{filepath.Join(dir, "missing.pem"), dkim.RSASHA256, "no such file"},
		{weakFile, dkim.RSASHA256, "1024 bits is too weak"},
		{edFile, dkim.RSASHA256, "Ed25519 key cannot sign rsa-sha256"},
		{junk, dkim.Ed25519SHA256, "no PEM block"},
	} {
		_, err := dkim.LoadKey("example.org", "s", c.alg, c.file)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadKey(%s, %s) = %v, want %q", filepath.Base(c.file), c.alg, err, c.want)
		}
	}
}

func TestKeyringChoice(t *testing.T) {
	a, _ := newKey(t, "example.org", "a", dkim.Ed25519SHA256)
	b, _ := newKey(t, "example.org", "b", dkim.Ed25519SHA256)
	c, _ := newKey(t, "mail.example.com", "c", dkim.Ed25519SHA256)
	kr, err := dkim.NewKeyring(a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	for dom, want := range map[string]*dkim.Key{"example.org": a, "EXAMPLE.org.": a, "sub.example.org": a, "mail.example.com": c, "example.com": nil, "org": nil} {
		if got := kr.ForDomain(dom); got != want {
			t.Errorf("ForDomain(%q) = %v, want %v", dom, got, want)
		}
	}
	if k, err := kr.Lookup("b._domainkey.example.org"); err != nil || k != b {
		t.Errorf("Lookup(b._domainkey.example.org) = %v, %v", k, err)
	}
	if _, err := kr.Lookup("example.net"); err == nil {
		t.Error("Lookup of an unknown domain succeeded")
	}
	if _, err := dkim.NewKeyring(a, a); err == nil {
		t.Error("two keys of one name accepted")
	}
}

func TestZoneLine(t *testing.T) {
	rec := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 400)
	line := dkim.ZoneLine("s._domainkey.example.org", rec)
	if !strings.HasPrefix(line, "s._domainkey.example.org. IN TXT ( \"") || strings.Count(line, "\"") != 4 {
		t.Errorf("ZoneLine = %s", line)
	}
}
