package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// configFixture writes text to name in dir and returns the path.
func configFixture(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, text)
	return p
}

// TestCheckConfigReferencedFiles: check-config opens and parses every file
// the configuration names, as serve does, and reports every problem at the
// line of the key that names the file.
func TestCheckConfigReferencedFiles(t *testing.T) {
	dir := t.TempDir()
	cert := testrelay.NewTestCert(t, "relay.test")
	certFile := configFixture(t, dir, "cert.pem", string(cert.CertPEM))
	keyFile := configFixture(t, dir, "key.pem", string(cert.KeyPEM))
	users := configFixture(t, dir, "users", "this is not a user line\n")
	notPEM := configFixture(t, dir, "ca.pem", "no certificate here\n")
	missing := filepath.Join(dir, "missing")
	conf := strings.Join([]string{
		`[[listener]]`,
		`address = "127.0.0.1:2525"`,
		`tls_cert = "` + missing + `.pem"`, // line 3
		`tls_key = "` + keyFile + `"`,
		`auth_users_file = "` + users + `"`, // line 5
		`[[listener]]`,
		`address = "127.0.0.1:2526"`,
		`tls_cert = "` + keyFile + `"`, // line 8: a key is no certificate
		`tls_key = "` + certFile + `"`,
		`[delivery]`,
		`tls_ca_file = "` + notPEM + `"`, // line 11
		`[[route]]`,
		`domain = "example.com"`,
		`auth_user = "u"`,
		`auth_password_file = "` + missing + `.pw"`, // line 15
		``,
	}, "\n")
	file := configFixture(t, dir, "ferry.toml", conf)
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", file}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	got := strings.Split(strings.TrimSpace(errb.String()), "\n")
	want := []string{
		file + ":3: listener.tls_cert: open " + missing + ".pem: no such file or directory",
		file + ":5: listener.auth_users_file: ",
		file + ":8: listener.tls_cert: loading ",
		file + ":11: delivery.tls_ca_file: " + notPEM + ": no PEM certificate found",
		file + ":15: route.auth_password_file: reading the password: open " + missing + ".pw: no such file or directory",
	}
	if len(got) != len(want) {
		t.Fatalf("%d problems reported, want %d:\n%s", len(got), len(want), errb.String())
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s…", i+1, got[i], want[i])
		}
	}

	// The same listener with working files passes.
	good := configFixture(t, dir, "good.toml", strings.Join([]string{
		`[[listener]]`,
		`address = "127.0.0.1:2525"`,
		`tls_cert = "` + certFile + `"`,
		`tls_key = "` + keyFile + `"`,
		``,
	}, "\n"))
	errb.Reset()
	if code := run([]string{"check-config", "-q", good}, &out, &errb); code != 0 {
		t.Fatalf("valid files: exit %d: %s", code, errb.String())
	}
}

// TestCheckConfigNonDefault: -n prints only what differs from the
// built-in defaults, as "key = value" lines.
func TestCheckConfigNonDefault(t *testing.T) {
	dir := t.TempDir()
	file := configFixture(t, dir, "ferry.toml", "[queue]\nspool = \"/srv/spool\"\nretry_max = \"1h\"\n[[listener]]\naddress = \"127.0.0.1:25\"\n[log]\nlevel = \"debug\"\n")
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "-n", file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "listener[0].address = \"127.0.0.1:25\"\nqueue.spool = \"/srv/spool\"\nlog.level = \"debug\"\n"
	if out.String() != want {
		t.Errorf("check-config -n printed:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if code := run([]string{"check-config", "-n", "-defaults"}, &out, &errb); code != 0 || out.Len() != 0 {
		t.Errorf("-n -defaults: exit %d, printed %q; want nothing", code, out.String())
	}
}

// TestCheckConfigKey: KEYs after the file print their effective values.
func TestCheckConfigKey(t *testing.T) {
	dir := t.TempDir()
	file := configFixture(t, dir, "ferry.toml", "[queue]\nspool = \"/srv/spool\"\n")
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{file, "queue.spool"}, 0, "/srv/spool\n"},
		{[]string{file, "queue.hop_concurrency", "log.format"}, 0, "10\ntext\n"},
		{[]string{file, "listener.address"}, 0, "127.0.0.1:2525\n"},
		{[]string{file, "dsn"}, 0, "dsn.postmaster = \"\"\ndsn.max_return_size = \"100KiB\"\n"},
		{[]string{"-defaults", "queue.spool"}, 0, "/var/spool/ferry\n"},
		{[]string{file, "queue.nope"}, 1, ""},
		{[]string{file, file}, 2, ""},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(append([]string{"check-config"}, tc.args...), &out, &errb)
		if code != tc.code || out.String() != tc.out {
			t.Errorf("check-config %v: exit %d, printed %q (stderr %q); want exit %d, %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out)
		}
	}
}
