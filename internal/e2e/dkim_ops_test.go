package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestDKIMOperatorSurface: what an operator sees of DKIM through the
// built binary: "ferry queue show" prints the results at receipt,
// "ferry explain" and "ferry probe" say what will happen to signatures,
// "ferry check-config" names a missing key's line, and a SIGHUP takes up
// a new key (and keeps the old one when the new file is bad).
func TestDKIMOperatorSurface(t *testing.T) {
	t.Parallel()
	w := newDKIMWorld(t)
	seven := startSink(t, "127.0.0.1:0", "--keywords", "PIPELINING,SIZE,ENHANCEDSTATUSCODES")
	routes := fmt.Sprintf(`
[[route]]
domain = "seven.example"
nexthop = %q
dkim_signed = "arc"

[[route]]
domain = "down.example"
nexthop = %q
`, literalHop(seven.Addr), literalHop(testrelay.RefusedAddr(t)))
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfgFile, []byte(w.config(routes+shortRetry)), 0o644); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
	r := startRelayFlags(t, "", spool, "--config", cfgFile)

	signed := w.signUpstream(t, dkimMessages()["eightbit"])
	msgFile := filepath.Join(dir, "signed.eml")
	if err := os.WriteFile(msgFile, signed, 0o644); err != nil {
		t.Fatal(err)
	}

	// queue show: a message whose hop is down stays queued with its
	// results.
	id := testrelay.SendOne(t, r.Addr, sender, []string{"user@down.example"}, signed)
	r.WaitLog(t, "event=deferred", id)
	out, errOut, code := ferry().Run(t, "queue", "--spool", spool, "show", id)
	if code != 0 || !strings.Contains(out, "Verified:  dkim=pass header.d=example.org header.s=up header.a=rsa-sha256; arc=none") {
		t.Errorf("queue show: %d %s\n%s", code, errOut, out)
	}

	// An unsigned message streams into the queue; its results say so.
	plain := dkimMessages()["sevenbit"]
	id2 := testrelay.SendOne(t, r.Addr, sender, []string{"user@down.example"}, plain)
	out, errOut, code = ferry().Run(t, "queue", "--spool", spool, "show", id2)
	if code != 0 || !strings.Contains(out, "Verified:  dkim=none; arc=none") {
		t.Errorf("queue show of an unsigned message: %d %s\n%s", code, errOut, out)
	}

	// explain: verified now, broken by the conversion, signed by Ferry
	// after it, ARC-sealed.
	out, errOut, code = ferry().Run(t, "explain", "--config", cfgFile, "--to", "user@seven.example", msgFile)
	for _, want := range []string{
		"DKIM signature by d=example.org s=up verifies now",
		"the conversion changes the signed content, so that signature will no longer verify at the next hop (RFC 6376 §5.3)",
		"Ferry signs after the conversion, over the octets sent with d=example.org s=ferry (ed25519-sha256)",
		"route policy is arc: Ferry adds an ARC set sealed by arc._domainkey.relay.test with cv=none",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("explain lacks %q: %d %s\n%s", want, code, errOut, out)
		}
	}

	// probe: what each sample transfer does to signatures.
	out, _, code = ferry().Run(t, "probe", "--no-tls", seven.Addr)
	if code != 0 || !strings.Contains(out, "DKIM: converted: a DKIM signature made before Ferry no longer verifies (RFC 6376 §5.3)") {
		t.Errorf("probe: %d\n%s", code, out)
	}

	// check-config: a missing key file is an error at its line.
	bad := strings.Replace(w.config(""), w.files["ferry"], filepath.Join(dir, "gone.pem"), 1)
	badFile := filepath.Join(dir, "bad.toml")
	os.WriteFile(badFile, []byte(bad), 0o644)
	_, errOut, code = ferry().Run(t, "check-config", "-q", badFile)
	if code != 1 || !strings.Contains(errOut, badFile+":8: dkim.key.key_file: want a readable ed25519-sha256 private key") {
		t.Errorf("check-config with a missing key: %d\n%s", code, errOut)
	}

	// SIGHUP with a bad key file: refused, the key in force stays.
	os.WriteFile(cfgFile, []byte(bad+routes), 0o644)
	r.Cmd.Process.Signal(syscall.SIGHUP)
	r.WaitLog(t, "reload refused", "dkim.key.key_file")

	// SIGHUP with a new key (rotation to selector ferry2): mail signed
	// from then on carries it, and dkimpy verifies it.
	pemData, signer, err := dkim.GenerateKey(dkim.Ed25519SHA256)
	if err != nil {
		t.Fatal(err)
	}
	newFile := filepath.Join(dir, "ferry2.pem")
	os.WriteFile(newFile, pemData, 0o600)
	rec, _ := dkim.KeyRecord(signer)
	w.dns.SetTXT("ferry2._domainkey.example.org", rec)
	w.records["ferry2._domainkey.example.org"] = rec
	rotated := strings.Replace(strings.Replace(w.config(""), w.files["ferry"], newFile, 1), `selector = "ferry"`, `selector = "ferry2"`, 1)
	os.WriteFile(cfgFile, []byte(rotated+routes), 0o644)
	r.Cmd.Process.Signal(syscall.SIGHUP)
	r.WaitLog(t, "DKIM keys reloaded", "keys=2")
	testrelay.SendOne(t, r.Addr, sender, []string{"user@seven.example"}, signed)
	j := w.judge(t, seven.waitCaptures(t, 1))["eightbit"]
	if s := j.sigs("ferry2"); len(s) != 1 || !s[0].OK || len(j.sigs("ferry")) != 0 {
		t.Errorf("after the rotation: signatures %+v, want one valid by ferry2 and none by ferry", j.verdict.DKIM)
	}
}

// TestDKIMKeygen: "ferry dkim keygen" writes a 0600 key that loads, never
// over an existing file, and prints the record for exactly that key.
func TestDKIMKeygen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, alg := range []string{"rsa-sha256", "ed25519-sha256"} {
		file := filepath.Join(dir, alg+".pem")
		out, errOut, code := ferry().Run(t, "dkim", "keygen", "-algorithm", alg, "-out", file, "example.org", "s2026")
		if code != 0 {
			t.Fatalf("keygen %s: %d %s", alg, code, errOut)
		}
		st, err := os.Stat(file)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: key file mode %v, %v; want 0600", alg, st.Mode().Perm(), err)
		}
		k, err := dkim.LoadKey("example.org", "s2026", dkim.Algorithm(alg), file)
		if err != nil {
			t.Fatalf("%s: the written key does not load: %v", alg, err)
		}
		rec, _ := dkim.KeyRecord(k.Signer)
		if !strings.Contains(out, dkim.ZoneLine("s2026._domainkey.example.org", rec)) || !strings.Contains(out, "[[dkim.key]]") {
			t.Errorf("%s: output lacks the record for the key:\n%s", alg, out)
		}
		if _, errOut, code := ferry().Run(t, "dkim", "keygen", "-algorithm", alg, "-out", file, "example.org", "s2026"); code != 1 || !strings.Contains(errOut, "exists") {
			t.Errorf("%s: keygen over an existing file: %d %s", alg, code, errOut)
		}
	}
	for _, c := range []struct {
		args  []string
		first string
	}{
		{[]string{"dkim", "keygen", "-out", filepath.Join(dir, "x.pem"), "localhost", "s1"}, `ferry dkim keygen: domain "localhost": want at least 2 labels`},
		{[]string{"dkim", "keygen", "example.org", "s1", "extra"}, `ferry dkim keygen: unexpected argument "extra"`},
		{[]string{"dkim", "keygen", "example.org"}, "ferry dkim keygen: missing argument: want DOMAIN SELECTOR"},
		{[]string{"dkim", "keygen", "-out", "", "example.org", "s1"}, "ferry dkim keygen: --out: empty value (give a value, or leave the flag out for the default)"},
		{[]string{"dkim", "rotate"}, `ferry dkim: unknown command "rotate": want keygen`},
	} {
		if _, errOut, code := ferry().Run(t, c.args...); code != 2 || firstLine(errOut) != c.first {
			t.Errorf("ferry %q: %d, first line %q; want 2, %q", c.args, code, firstLine(errOut), c.first)
		}
	}
	// Flags after the arguments.
	file := filepath.Join(dir, "late-flags.pem")
	if _, errOut, code := ferry().Run(t, "dkim", "keygen", "example.org", "s3", "-out", file, "-algorithm", "ed25519-sha256"); code != 0 {
		t.Errorf("keygen with flags last: %d %s", code, errOut)
	} else if _, err := dkim.LoadKey("example.org", "s3", dkim.Ed25519SHA256, file); err != nil {
		t.Errorf("keygen with flags last wrote no Ed25519 key: %v", err)
	}
}
