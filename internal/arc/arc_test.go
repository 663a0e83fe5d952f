package arc_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/arc"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/dkim/dkimtest"
)

const msg = "From: Alice <alice@example.org>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: ARC test\r\n" +
	"Date: Thu, 3 Dec 2026 09:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Gr=C3=BC=C3=9Fe\t aus Wien  \r\n\r\n"

// sealer returns a sealer with a fresh RSA key for domain, published in
// ns and keys.
func sealer(t *testing.T, ns *dkimtest.DNS, keys map[string]string, domain string) *arc.Sealer {
	t.Helper()
	k, rec := dkimtest.NewKey(t, ns, domain, "arc1", dkim.RSASHA256)
	keys[k.Name()] = rec
	return &arc.Sealer{Key: k, AuthServID: "relay." + domain, Now: func() time.Time { return time.Unix(1764752400, 0) }}
}

func validate(t *testing.T, ns *dkimtest.DNS, m string) arc.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := arc.Validate(ctx, strings.NewReader(m), dkim.NewNetResolver(ns.Addr))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestChainWithDkimpy seals a message twice (two relays), checks each
// step with Validate and with dkimpy's arc_verify, then breaks it.
func TestChainWithDkimpy(t *testing.T) {
	dkimtest.NeedDkimpy(t)
	ns := dkimtest.StartDNS(t)
	keys := map[string]string{}
	s1 := sealer(t, ns, keys, "example.org")
	s2 := sealer(t, ns, keys, "example.net")

	if r := validate(t, ns, msg); r.Status != arc.None || r.Instance != 0 {
		t.Fatalf("unsealed message: %+v, want none", r)
	}
	set1, err := s1.Seal(strings.NewReader(msg), "dkim=pass header.d=example.org; spf=none", arc.None)
	if err != nil {
		t.Fatal(err)
	}
	m1 := set1 + msg
	if !strings.Contains(set1, "cv=none") || !strings.Contains(set1, "ARC-Authentication-Results: i=1; relay.example.org;") {
		t.Errorf("first set:\n%s", set1)
	}
	if r := validate(t, ns, m1); r.Status != arc.Pass || r.Instance != 1 {
		t.Errorf("after one set: %+v, want pass at 1", r)
	}
	// The second relay changes the body (as a conversion would), then
	// seals with cv=pass (the chain validated at its receipt).
	changed := strings.Replace(m1, "Wien", "Graz", 1)
	set2, err := s2.Seal(strings.NewReader(changed), "arc=pass", arc.Pass)
	if err != nil {
		t.Fatal(err)
	}
	m2 := set2 + changed
	if !strings.Contains(set2, "i=2; a=rsa-sha256") || !strings.Contains(set2, "cv=pass") {
		t.Errorf("second set:\n%s", set2)
	}
	if r := validate(t, ns, m2); r.Status != arc.Pass || r.Instance != 2 {
		t.Errorf("after two sets: %+v, want pass at 2", r)
	}
	// A change after the last seal breaks the newest AMS.
	broken := strings.Replace(m2, "Graz", "Linz", 1)
	if r := validate(t, ns, broken); r.Status != arc.Fail || !strings.Contains(r.Reason, "body hash") {
		t.Errorf("changed after sealing: %+v, want fail (body hash)", r)
	}
	// Tampering with an earlier set breaks its seal.
	tampered := strings.Replace(m2, "dkim=pass header.d=example.org", "dkim=pass header.d=example.com", 1)
	if r := validate(t, ns, tampered); r.Status != arc.Fail || !strings.Contains(r.Reason, "ARC-Seal i=2") {
		t.Errorf("earlier AAR changed: %+v, want fail at seal 2", r)
	}
	vs := dkimtest.VerifyBytes(t, keys, []byte(m1), []byte(m2), []byte(broken), []byte(tampered))
	for i, want := range []string{"pass", "pass", "fail", "fail"} {
		if vs[i].ARC != want {
			t.Errorf("dkimpy arc_verify of message %d = %s (%s), want %s", i, vs[i].ARC, vs[i].ARCReason, want)
		}
	}
}

// TestFailedChain: a relay that found the chain failed seals with cv=fail
// over its own set only (RFC 8617 §5.1.2), and the chain stays failed.
func TestFailedChain(t *testing.T) {
	ns := dkimtest.StartDNS(t)
	keys := map[string]string{}
	s1 := sealer(t, ns, keys, "example.org")
	set1, err := s1.Seal(strings.NewReader(msg), "dkim=pass header.d=example.org", arc.None)
	if err != nil {
		t.Fatal(err)
	}
	set2, err := s1.Seal(strings.NewReader(set1+msg), "arc=fail", arc.Fail)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(set2, "i=2;") || !strings.Contains(set2, "cv=fail") {
		t.Errorf("set after a failed chain:\n%s", set2)
	}
	if r := validate(t, ns, set2+set1+msg); r.Status != arc.Fail {
		t.Errorf("%+v, want fail", r)
	}
}

// TestMalformedChains: incomplete or duplicated sets fail validation.
func TestMalformedChains(t *testing.T) {
	ns := dkimtest.StartDNS(t)
	keys := map[string]string{}
	s1 := sealer(t, ns, keys, "example.org")
	set1, err := s1.Seal(strings.NewReader(msg), "dkim=none", arc.None)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(set1, "\r\n")
	var noAAR string
	for _, l := range lines {
		if !strings.HasPrefix(l, "ARC-Authentication-Results") && !strings.HasPrefix(l, "\tdkim=") {
			noAAR += l
		}
	}
	for name, m := range map[string]string{
		"missing AAR":    noAAR + msg,
		"duplicated set": set1 + set1 + msg,
		"instance 0":     strings.ReplaceAll(set1, "i=1;", "i=0;") + msg,
	} {
		if r := validate(t, ns, m); r.Status != arc.Fail {
			t.Errorf("%s: %+v, want fail", name, r)
		}
	}
}

// TestSealNeedsRSA: ARC signs with rsa-sha256 only.
func TestSealNeedsRSA(t *testing.T) {
	pemData, _, _ := dkim.GenerateKey(dkim.Ed25519SHA256)
	file := filepath.Join(t.TempDir(), "ed.pem")
	os.WriteFile(file, pemData, 0o600)
	k, err := dkim.LoadKey("example.org", "ed", dkim.Ed25519SHA256, file)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&arc.Sealer{Key: k, AuthServID: "x"}).Seal(bytes.NewReader([]byte(msg)), "", arc.None)
	if err == nil || !strings.Contains(err.Error(), "not an RSA key") {
		t.Errorf("Seal with Ed25519 = %v", err)
	}
}
