package e2e

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/arc"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/dkim/dkimtest"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// dkimWorld is the DNS server, the keys and their records for the DKIM
// tests: "up" is the upstream signer's key (dkimpy signs with it before
// Ferry sees the message), "ferry" is Ferry's signing key for example.org
// (Ed25519), "arc" Ferry's ARC sealing key for relay.test (RSA).
type dkimWorld struct {
	dns     *dkimtest.DNS
	records map[string]string // DNS name → TXT value, for dkimpy
	upKey   string            // PKCS #1 PEM file, for dkimpy
	files   map[string]string // Ferry's key files by selector
}

func newDKIMWorld(t *testing.T) *dkimWorld {
	t.Helper()
	dkimtest.NeedDkimpy(t)
	w := &dkimWorld{dns: dkimtest.StartDNS(t), records: map[string]string{}, files: map[string]string{}}
	dir := t.TempDir()
	for _, k := range []struct {
		name string
		alg  dkim.Algorithm
	}{{"up._domainkey.example.org", dkim.RSASHA256}, {"ferry._domainkey.example.org", dkim.Ed25519SHA256}, {"arc._domainkey.relay.test", dkim.RSASHA256}} {
		pemData, signer, err := dkim.GenerateKey(k.alg)
		if err != nil {
			t.Fatal(err)
		}
		sel := strings.Split(k.name, ".")[0]
		file := filepath.Join(dir, sel+".pem")
		if sel == "up" {
			// dkimpy reads PKCS #1.
			pemData = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(signer.(*rsa.PrivateKey))})
			w.upKey = file
		}
		if err := os.WriteFile(file, pemData, 0o600); err != nil {
			t.Fatal(err)
		}
		w.files[sel] = file
		rec, err := dkim.KeyRecord(signer)
		if err != nil {
			t.Fatal(err)
		}
		w.records[k.name] = rec
		w.dns.SetTXT(k.name, rec)
	}
	return w
}

// config returns a relay configuration with Ferry's two keys, verification
// through the test DNS server, and extra text (routes).
func (w *dkimWorld) config(extra string) string {
	return fmt.Sprintf(`[dkim]
resolver = %q
arc_key = "relay.test"

[[dkim.key]]
domain = "example.org"
selector = "ferry"
key_file = %q
algorithm = "ed25519-sha256"

[[dkim.key]]
domain = "relay.test"
selector = "arc"
key_file = %q
`, w.dns.Addr, w.files["ferry"], w.files["arc"]) + extra
}

// sevenBitHop starts a sink without 8BITMIME that refuses 8-bit content.
func sevenBitHop(t *testing.T) *hop {
	t.Helper()
	return startSink(t, "127.0.0.1:0", "--keywords", "PIPELINING,SIZE,ENHANCEDSTATUSCODES", "--strict-7bit")
}

// allTo returns the configuration with Ferry's keys and one route sending
// every domain to the hop at addr with the given dkim_signed policy.
func (w *dkimWorld) allTo(addr, dkimSigned string) string {
	return w.config(fmt.Sprintf("\n[[route]]\ndomain = \"*\"\nnexthop = %q\ndkim_signed = %q\n", literalHop(addr), dkimSigned))
}

// signUpstream signs msg as the author's domain would before Ferry.
func (w *dkimWorld) signUpstream(t *testing.T, msg []byte) []byte {
	return dkimtest.Sign(t, msg, "up", "example.org", w.upKey, "rsa-sha256")
}

// dkimMessages are the test messages: name → content, all From
// example.org, each with an X-Test field naming it.
func dkimMessages() map[string][]byte {
	head := func(name, ctype, cte string) string {
		return "From: Alice <alice@example.org>\r\nTo: <user@example.com>\r\nSubject: DKIM " + name + "\r\n" +
			"Date: Thu, 3 Dec 2026 09:00:00 +0000\r\nMessage-ID: <" + name + "@example.org>\r\nX-Test: " + name + "\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: " + ctype + "\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n"
	}
	var bin bytes.Buffer
	bin.WriteString(head("binary", `multipart/mixed; boundary="b1"`, "binary"))
	bin.WriteString("--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nAnbei die Datei, schöne Grüße.\r\n")
	bin.WriteString("--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n")
	for i := 0; i < 2000; i++ {
		bin.WriteByte(byte(i*7 + 1))
		if i%97 == 0 {
			bin.WriteString("\x00\r\n")
		}
	}
	bin.WriteString("\r\n--b1--\r\n")
	return map[string][]byte{
		"eightbit": []byte(head("eightbit", "text/plain; charset=utf-8", "8bit") + "Grüße aus Wien, à bientôt.\r\n" + strings.Repeat("Zürich Genève ", 20) + "\r\n"),
		"binary":   bin.Bytes(),
		"sevenbit": []byte(head("sevenbit", "text/plain; charset=us-ascii", "7bit") + "Plain ASCII, nothing to convert.\r\n"),
	}
}

// sendBDAT sends one BODY=BINARYMIME message with BDAT (RFC 3030).
func sendBDAT(t *testing.T, addr, from, rcpt string, content []byte) {
	t.Helper()
	c := testrelay.Dial(t, addr)
	c.Expect(250, c.Cmd("MAIL FROM:<%s> BODY=BINARYMIME", from))
	c.Expect(250, c.Cmd("RCPT TO:<%s>", rcpt))
	c.Write([]byte(fmt.Sprintf("BDAT %d LAST\r\n", len(content))))
	c.Write(content)
	c.Expect(250, c.Read())
	c.Quit()
}

// send sends a message the way its content needs.
func send(t *testing.T, addr, name, rcpt string, content []byte) {
	t.Helper()
	if name == "binary" {
		sendBDAT(t, addr, sender, rcpt, content)
		return
	}
	testrelay.SendOne(t, addr, sender, []string{rcpt}, content)
}

// judged is one captured message with dkimpy's verdict.
type judged struct {
	data    []byte
	verdict dkimtest.Verdict
}

// judge runs dkimpy over every capture and returns them by X-Test name.
func (w *dkimWorld) judge(t *testing.T, caps []capture) map[string]judged {
	t.Helper()
	var msgs [][]byte
	for _, c := range caps {
		msgs = append(msgs, c.data)
	}
	vs := dkimtest.VerifyBytes(t, w.records, msgs...)
	out := map[string]judged{}
	for i, c := range caps {
		_, rest, ok := bytes.Cut(c.data, []byte("X-Test: "))
		if !ok {
			t.Fatalf("capture without X-Test: %q", testrelay.Clip(c.data))
		}
		name, _, _ := bytes.Cut(rest, []byte("\r\n"))
		out[string(name)] = judged{data: c.data, verdict: vs[i]}
	}
	return out
}

// sigs returns the verdicts for signatures by selector s, top first.
func (j judged) sigs(s string) []dkimtest.Signature {
	var out []dkimtest.Signature
	for _, v := range j.verdict.DKIM {
		if v.Selector == s {
			out = append(out, v)
		}
	}
	return out
}

// TestDKIMSignAfterConversion relays 8-bit, binary and 7-bit messages,
// signed upstream by dkimpy, through the built binary to a hop without
// 8BITMIME (and the 8-bit one also to a hop with it), and lets dkimpy
// judge what arrived: Ferry's own signature (made after the conversion)
// verifies everywhere; the upstream signature is broken exactly where the
// conversion changed the message; where it did, the ARC set Ferry added
// verifies with cv=pass; an 8BITMIME hop gets the message unconverted with
// the upstream signature intact.
func TestDKIMSignAfterConversion(t *testing.T) {
	t.Parallel()
	w := newDKIMWorld(t)
	seven := sevenBitHop(t)
	eight := startSink(t, "127.0.0.1:0")
	cfg := w.config(fmt.Sprintf(`
[[route]]
domain = "seven.example"
nexthop = %q
dkim_signed = "arc"

[[route]]
domain = "eight.example"
nexthop = %q
dkim_signed = "arc"
`, literalHop(seven.Addr), literalHop(eight.Addr)))
	r := startRelay(t, cfg, "")
	msgs := dkimMessages()
	for name, m := range msgs {
		send(t, r.Addr, name, "user@seven.example", w.signUpstream(t, m))
	}
	send(t, r.Addr, "eightbit", "user@eight.example", w.signUpstream(t, msgs["eightbit"]))

	got := w.judge(t, seven.waitCaptures(t, 3))
	for _, name := range []string{"eightbit", "binary", "sevenbit"} {
		j, ok := got[name]
		if !ok {
			t.Errorf("%s: not at the 7-bit hop", name)
			continue
		}
		if p := testrelay.Problems7Bit(j.data); len(p) > 0 {
			t.Errorf("%s: not 7-bit at a hop without 8BITMIME: %v", name, p)
		}
		v := j.verdict
		if len(v.DKIM) == 0 || v.DKIM[0].Selector != "ferry" || !v.DKIM[0].OK {
			t.Errorf("%s: top signature is not Ferry's valid one: %+v", name, v.DKIM)
		}
		if n := len(j.sigs("ferry")); n != 1 {
			t.Errorf("%s: %d signatures by Ferry's key, want 1", name, n)
		}
		up := j.sigs("up")
		converted := name != "sevenbit"
		if len(up) != 1 || up[0].OK == converted {
			t.Errorf("%s: upstream signature %+v, want it valid exactly when not converted (converted=%v)", name, up, converted)
		}
		switch {
		case converted && v.ARC != "pass":
			t.Errorf("%s: ARC chain %s (%s), want pass", name, v.ARC, v.ARCReason)
		case converted && !bytes.Contains(j.data, []byte("ARC-Seal: i=1; a=rsa-sha256")):
			t.Errorf("%s: no ARC-Seal i=1: %q", name, testrelay.Clip(j.data))
		case converted && !bytes.Contains(j.data, []byte("dkim=pass header.d=example.org header.s=up")):
			t.Errorf("%s: the ARC-Authentication-Results lack the upstream pass: %q", name, testrelay.Clip(j.data))
		case !converted && v.ARC != "none":
			t.Errorf("%s: unconverted message got an ARC set (%s)", name, v.ARC)
		}
	}
	e := w.judge(t, eight.waitCaptures(t, 1))["eightbit"]
	if !testrelay.Has8Bit(e.data) {
		t.Errorf("8BITMIME hop got a converted message: %q", testrelay.Clip(e.data))
	}
	if up := e.sigs("up"); len(up) != 1 || !up[0].OK {
		t.Errorf("8BITMIME hop: upstream signature %+v, want valid", up)
	}
	if f := e.sigs("ferry"); len(f) != 1 || !f[0].OK || e.verdict.ARC != "none" {
		t.Errorf("8BITMIME hop: Ferry's signature %+v, ARC %s; want one valid signature and no ARC set", f, e.verdict.ARC)
	}
	// The results at receipt are in the log.
	if lines := r.LogLines("event=verified", "dkim=pass", "header.s=up"); len(lines) < 4 {
		t.Errorf("%d verified log lines with the upstream pass, want 4", len(lines))
	}
	if lines := r.LogLines("event=signed", "ARC set added by arc._domainkey.relay.test (cv=none)"); len(lines) != 2 {
		t.Errorf("%d signed log lines with an ARC set, want 2", len(lines))
	}
}

// TestDKIMTwoHops: a message Ferry signs at two hops carries one valid
// signature by Ferry's key at the end: the second relay keeps the first
// one when it sends the message unchanged, and replaces it when its
// conversion broke it.
func TestDKIMTwoHops(t *testing.T) {
	t.Parallel()
	w := newDKIMWorld(t)
	seven := sevenBitHop(t)
	b := startRelay(t, w.allTo(seven.Addr, "arc"), "")
	a := startRelay(t, w.config(""), "", routeAll(b.Addr))
	msgs := dkimMessages()
	for _, name := range []string{"eightbit", "sevenbit"} {
		send(t, a.Addr, name, "user@example.com", w.signUpstream(t, msgs[name]))
	}
	got := w.judge(t, seven.waitCaptures(t, 2))
	for name, j := range got {
		f := j.sigs("ferry")
		if len(f) != 1 || !f[0].OK || j.verdict.DKIM[0].Selector != "ferry" {
			t.Errorf("%s: signatures %+v, want exactly one valid by Ferry's key, on top", name, j.verdict.DKIM)
		}
	}
	if v := got["eightbit"].verdict; v.ARC != "pass" {
		t.Errorf("eightbit: ARC %s (%s), want pass", v.ARC, v.ARCReason)
	}
	if l := b.LogLines("event=signed", "replacing 1 earlier signature"); len(l) != 1 {
		t.Errorf("second relay: %d lines replacing the first signature, want 1", len(l))
	}
	if l := b.LogLines("event=signed", "not DKIM-signed again"); len(l) != 1 {
		t.Errorf("second relay: %d lines keeping the first signature, want 1", len(l))
	}
}

// TestDKIMExistingChain: a message that arrives with a valid ARC set
// (sealed upstream) and needs conversion gets Ferry's set as instance 2
// with cv=pass, and dkimpy validates the whole chain.
func TestDKIMExistingChain(t *testing.T) {
	t.Parallel()
	w := newDKIMWorld(t)
	upSeal, rec := dkimtest.NewKey(t, w.dns, "example.net", "arcup", dkim.RSASHA256)
	w.records[upSeal.Name()] = rec
	seven := sevenBitHop(t)
	r := startRelay(t, w.allTo(seven.Addr, "arc"), "")
	signed := w.signUpstream(t, dkimMessages()["eightbit"])
	set, err := (&arc.Sealer{Key: upSeal, AuthServID: "mx.example.net"}).Seal(bytes.NewReader(signed), "dkim=pass header.d=example.org", arc.None)
	if err != nil {
		t.Fatal(err)
	}
	send(t, r.Addr, "eightbit", "user@example.com", append([]byte(set), signed...))
	j := w.judge(t, seven.waitCaptures(t, 1))["eightbit"]
	if j.verdict.ARC != "pass" {
		t.Errorf("ARC chain %s (%s), want pass", j.verdict.ARC, j.verdict.ARCReason)
	}
	if !bytes.Contains(j.data, []byte("ARC-Seal: i=2; a=rsa-sha256")) || !bytes.Contains(j.data, []byte("cv=pass;")) {
		t.Errorf("no ARC-Seal i=2 with cv=pass: %q", testrelay.Clip(j.data))
	}
	if f := j.sigs("ferry"); len(f) != 1 || !f[0].OK {
		t.Errorf("Ferry's signature: %+v", j.verdict.DKIM)
	}
	r.WaitLog(t, "event=verified", "arc=pass")
}

// TestDKIMBounceRoute: with dkim_signed = "bounce", a signed message that
// would need conversion fails at once with 5.6.3 instead of reaching the
// hop with a broken signature; one that needs none goes through signed.
func TestDKIMBounceRoute(t *testing.T) {
	t.Parallel()
	w := newDKIMWorld(t)
	seven := sevenBitHop(t)
	r := startRelay(t, w.allTo(seven.Addr, "bounce"), "")
	msgs := dkimMessages()
	id := testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, w.signUpstream(t, msgs["eightbit"]))
	line := r.WaitLog(t, "event=bounced", id)
	if !strings.Contains(line, "554 5.6.3 Conversion required but prohibited for DKIM-signed mail by policy") {
		t.Errorf("bounce line: %s", line)
	}
	testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, w.signUpstream(t, msgs["sevenbit"]))
	// The hop gets the 7-bit message, and the sender's DSN for the other
	// (every domain routes there), which returns the refused message.
	got := w.judge(t, seven.waitCaptures(t, 2))
	j, ok := got["sevenbit"]
	if dsn := got["eightbit"]; !ok || !bytes.Contains(dsn.data, []byte("multipart/report")) || !bytes.Contains(dsn.data, []byte("5.6.3")) {
		t.Fatalf("the hop got %d messages, want the 7-bit one and the DSN for the refused one", len(got))
	}
	if up, f := j.sigs("up"), j.sigs("ferry"); len(up) != 1 || !up[0].OK || len(f) != 1 || !f[0].OK {
		t.Errorf("7-bit message: %+v, want both signatures valid", j.verdict.DKIM)
	}
}
