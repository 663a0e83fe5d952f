package deliver

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/dkim/dkimtest"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/smtp"
)

// testKey makes a key for domain/selector, published in ns when not nil.
func testKey(t *testing.T, ns *dkimtest.DNS, domain, selector string, alg dkim.Algorithm) *dkim.Key {
	t.Helper()
	k, _ := dkimtest.NewKey(t, ns, domain, selector, alg)
	return k
}

func verifyAt(t *testing.T, ns *dkimtest.DNS, data []byte) []smtp.DKIMResult {
	t.Helper()
	res, err := dkim.Verify(context.Background(), bytes.NewReader(data), dkim.NewNetResolver(ns.Addr))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSignedAfterConversion: through DATA to a 7-bit hop (converted), a
// 5 MB message (spilled to a temporary file while signed), and BDAT to a
// BINARYMIME hop (unconverted), what arrives carries a signature that
// verifies over exactly what arrived.
func TestSignedAfterConversion(t *testing.T) {
	ns := dkimtest.StartDNS(t)
	k := testKey(t, ns, "origin.example", "s1", dkim.Ed25519SHA256)
	signer := &KeySigner{Keys: dkim.NewKeys(mustKeyring(t, k)), AuthServID: "ferry.test"}
	var big strings.Builder
	big.WriteString("From: a@origin.example\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for big.Len() < 5<<20 {
		big.WriteString("Grüße aus Köln, ein langer Brief über viele Zeilen.\r\n")
	}
	binary := "From: a@origin.example\r\nSubject: bin\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\r\n"
	for _, c := range []struct {
		name, body string
		keywords   []string
		converted  bool
	}{
		{"8-bit to a 7-bit hop", eightBitMsg, []string{"PIPELINING", "SIZE"}, true},
		{"5 MB to a 7-bit hop", big.String(), []string{"PIPELINING", "SIZE"}, true},
		{"binary to a BINARYMIME hop", binary, []string{"PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, rt := startSink(t, sink.Options{Keywords: c.keywords})
			q := newMemQueue()
			a, logs := testAgent(t, q, rt, func(cfg *Config) { cfg.Converter, cfg.Signer = Downgrader{}, signer })
			a.DeliverLease(context.Background(), lease(testMessage("SIG1", c.body, "x@hop.test")))
			q.expect(t, "SIG1", 0, queue.Sent, "250")
			m := s.Messages()[0]
			if !bytes.HasPrefix(m.Data, []byte("DKIM-Signature:")) {
				t.Fatalf("no signature on top: %q", m.Data[:min(200, len(m.Data))])
			}
			if res := verifyAt(t, ns, m.Data); len(res) != 1 || res[0].Result != "pass" {
				t.Errorf("at the hop: %+v", res)
			}
			if conv := hasHigh(m.Data) < 0; conv != c.converted {
				t.Errorf("converted = %v, want %v", conv, c.converted)
			}
			if !strings.Contains(logs.String(), "event=signed") {
				t.Errorf("no signed log line:\n%s", logs.String())
			}
		})
	}
}

// TestSigningFailureDefers: when the message cannot be signed it is not
// sent unsigned: the recipient is deferred with 451 4.3.0.
func TestSigningFailureDefers(t *testing.T) {
	s, rt := startSink(t, sink.Options{Keywords: []string{"PIPELINING"}})
	rt.Policy.DKIMKey = "removed.example" // e.g. a key dropped by a reload
	signer := &KeySigner{Keys: dkim.NewKeys(mustKeyring(t))}
	q := newMemQueue()
	a, _ := testAgent(t, q, rt, func(cfg *Config) { cfg.Converter, cfg.Signer = Downgrader{}, signer })
	a.DeliverLease(context.Background(), lease(testMessage("SIG2", eightBitMsg, "x@hop.test")))
	q.expect(t, "SIG2", 0, queue.Deferred, "451 4.3.0 Local error signing the message")
	if n := len(s.Messages()); n != 0 {
		t.Errorf("the hop got %d messages", n)
	}
}

// TestDecide: the key and ARC choices for one transfer.
func TestDecide(t *testing.T) {
	org := testKey(t, nil, "example.org", "s1", dkim.Ed25519SHA256)
	seal := testKey(t, nil, "relay.example", "arc", dkim.RSASHA256)
	s := &KeySigner{Keys: dkim.NewKeys(mustKeyring(t, org, seal)), ARCKey: "relay.example"}
	hdr := func(extra string) []dkim.Field {
		f, _, err := dkim.ReadHeader(bufioReader(extra + "From: A <a@sub.example.org>\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	own := "DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=s1; h=From; bh=x; b=y\r\n"
	pass := &smtp.AuthResults{ARC: "none", DKIM: []smtp.DKIMResult{{Domain: "example.org", Selector: "s1", Result: "pass"}}}
	failed := &smtp.AuthResults{ARC: "pass", ARCInstance: 1, DKIM: []smtp.DKIMResult{{Domain: "example.org", Selector: "s1", Result: "fail"}}}
	for _, c := range []struct {
		name       string
		req        SignRequest
		fields     []dkim.Field
		key, sealK string
		skip, cv   string
	}{
		{"From subdomain → parent key", SignRequest{Env: &smtp.Envelope{}}, hdr(""), "s1._domainkey.example.org", "", "", ""},
		{"route key", SignRequest{Env: &smtp.Envelope{}, Policy: route.Policy{DKIMKey: "relay.example"}}, hdr(""), "arc._domainkey.relay.example", "", "", ""},
		{"own signature, unchanged", SignRequest{Env: &smtp.Envelope{AuthResults: pass}}, hdr(own), "s1._domainkey.example.org", "", "already signed", ""},
		{"own signature, converted", SignRequest{Env: &smtp.Envelope{AuthResults: pass}, Converted: true}, hdr(own), "s1._domainkey.example.org", "", "", ""},
		{"own signature broken at receipt", SignRequest{Env: &smtp.Envelope{AuthResults: failed}}, hdr(own), "s1._domainkey.example.org", "", "", ""},
		{"arc, converted, chain passed", SignRequest{Env: &smtp.Envelope{AuthResults: failed}, Policy: route.Policy{DKIMSigned: route.ARC}, Signed: true, Converted: true}, hdr(own), "s1._domainkey.example.org", "arc._domainkey.relay.example", "", "pass"},
		{"arc, not converted", SignRequest{Env: &smtp.Envelope{AuthResults: pass}, Policy: route.Policy{DKIMSigned: route.ARC}, Signed: true}, hdr(own), "s1._domainkey.example.org", "", "already signed", ""},
	} {
		d, err := s.Decide(c.req, c.fields)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		name := func(k *dkim.Key) string {
			if k == nil {
				return ""
			}
			return k.Name()
		}
		if name(d.Key) != c.key || name(d.Seal) != c.sealK || !strings.Contains(d.Skip, c.skip) || (c.skip == "") != (d.Skip == "") || d.CV != c.cv {
			t.Errorf("%s: %+v (key %s, seal %s)", c.name, d, name(d.Key), name(d.Seal))
		}
	}
	// ARC without results at receipt: no set, and why.
	d, _ := s.Decide(SignRequest{Env: &smtp.Envelope{}, Policy: route.Policy{DKIMSigned: route.ARC}, Signed: true, Converted: true}, hdr(own))
	if d.Seal != nil || !strings.Contains(d.SealSkip, "not verified at receipt") {
		t.Errorf("arc without results: %+v", d)
	}
}

func mustKeyring(t *testing.T, keys ...*dkim.Key) *dkim.Keyring {
	t.Helper()
	kr, err := dkim.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
