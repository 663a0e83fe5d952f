package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/access"
	"github.com/ferrymta/ferry/internal/auth"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// serveFixture is a configuration file with TLS, AUTH and relay settings
// and the files it names.
type serveFixture struct {
	dir, configFile, certFile, keyFile, usersFile string
	cert                                          *x509.Certificate
}

func newServeFixture(t *testing.T) serveFixture {
	t.Helper()
	dir := t.TempDir()
	f := serveFixture{
		dir:        dir,
		configFile: filepath.Join(dir, "ferry.toml"),
		certFile:   filepath.Join(dir, "cert.pem"),
		keyFile:    filepath.Join(dir, "key.pem"),
		usersFile:  filepath.Join(dir, "users.txt"),
	}
	f.cert = writeCert(t, f.certFile, f.keyFile)
	hash, err := auth.HashBcrypt("secret", 4) // bcrypt's lowest cost: fast tests
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.usersFile, []byte("# test users\nalice:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`hostname = "relay.test"

[[listener]]
address = "127.0.0.1:0"
tls_cert = %q
tls_key = %q
require_tls = true
auth_users_file = %q

[timeouts]
greeting = "40s"
data_total = "7m"

[relay]
networks = ["10.0.0.0/8"]
accept_domains = ["company.example"]

[[relay.sender_rule]]
networks = ["10.0.0.0/8"]
domains = ["company.example"]

[relay.rate]
per_ip = "2/1h"

[queue]
spool = %q

[[route]]
domain = "company.example"
nexthop = "[127.0.0.1]:2526"

[admin]
address = "off"
`, f.certFile, f.keyFile, f.usersFile, filepath.Join(dir, "spool"))
	if err := os.WriteFile(f.configFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestServeConfigFile(t *testing.T) {
	fx := newServeFixture(t)
	cfg, err := loadServeConfig(serveFlags{configFile: fx.configFile, spool: filepath.Join(fx.dir, "other-spool")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "relay.test" || cfg.Queue.Spool != filepath.Join(fx.dir, "other-spool") {
		t.Errorf("hostname %q, spool %q: want the file's hostname and the flag's spool", cfg.Hostname, cfg.Queue.Spool)
	}

	t.Run("smtpd", func(t *testing.T) {
		c, reloaders, err := smtpdConfig(cfg, cfg.Listeners[0], discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		if c.TLS == nil || c.TLS.GetCertificate == nil {
			t.Fatal("TLS not configured from tls_cert/tls_key")
		}
		got, err := c.TLS.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil || !bytes.Equal(got.Certificate[0], fx.cert.Raw) {
			t.Errorf("certificate served is not the configured one (err %v)", err)
		}
		if !c.RequireTLS || c.ImplicitTLS || c.AllowInsecureAuth {
			t.Errorf("RequireTLS %v ImplicitTLS %v AllowInsecureAuth %v, want true false false", c.RequireTLS, c.ImplicitTLS, c.AllowInsecureAuth)
		}
		if c.Auth == nil {
			t.Fatal("AUTH not configured from auth_users_file")
		}
		if ok, err := c.Auth.Authenticate("alice", "secret"); !ok || err != nil {
			t.Errorf("alice/secret: %v %v, want true", ok, err)
		}
		if ok, _ := c.Auth.Authenticate("alice", "wrong"); ok {
			t.Error("alice/wrong authenticated")
		}
		want := smtpd.Timeouts{Greeting: 40 * time.Second, Command: 5 * time.Minute, Data: 3 * time.Minute, DataTotal: 7 * time.Minute, Write: 5 * time.Minute,
			HelloPhase: 5 * time.Minute, EnvelopePhase: 10 * time.Minute, PregreetWait: time.Second}
		if c.Timeouts != want {
			t.Errorf("timeouts %+v, want %+v", c.Timeouts, want)
		}
		if c.Hostname != "relay.test" {
			t.Errorf("hostname %q", c.Hostname)
		}
		var what []string
		for _, r := range reloaders {
			what = append(what, r.what+" "+r.file)
			if err := r.reload(); err != nil {
				t.Errorf("reload %s: %v", r.what, err)
			}
		}
		if len(what) != 2 || what[0] != "certificate "+fx.certFile || what[1] != "users file "+fx.usersFile {
			t.Errorf("reloaders %q", what)
		}
	})

	t.Run("smtpd errors", func(t *testing.T) {
		missing := filepath.Join(fx.dir, "missing.pem")
		cases := []struct {
			name string
			mod  func(*config.Listener)
			want string
		}{
			{"certificate", func(l *config.Listener) { l.TLSCert = missing },
				"listener 127.0.0.1:0: loading tls_cert " + missing + " and tls_key " + fx.keyFile + ": "},
			{"key", func(l *config.Listener) { l.TLSKey = fx.usersFile },
				"listener 127.0.0.1:0: loading tls_cert " + fx.certFile + " and tls_key " + fx.usersFile + ": "},
			{"users", func(l *config.Listener) { l.AuthUsersFile = missing },
				"listener 127.0.0.1:0: loading auth_users_file " + missing + ": "},
			{"users syntax", func(l *config.Listener) { l.AuthUsersFile = fx.certFile },
				"listener 127.0.0.1:0: loading auth_users_file " + fx.certFile + ": "},
		}
		for _, tc := range cases {
			l := cfg.Listeners[0]
			tc.mod(&l)
			_, _, err := smtpdConfig(cfg, l, discardLogger())
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("%s: got %v, want an error starting %q", tc.name, err, tc.want)
			}
		}
	})

	t.Run("access", func(t *testing.T) {
		ac, err := accessConfig(cfg, serveFlags{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ac.RelayNetworks) != 1 || ac.RelayNetworks[0] != netip.MustParsePrefix("10.0.0.0/8") {
			t.Errorf("relay networks %v, want the file's", ac.RelayNetworks)
		}
		if ac.Rate.PerIP != (access.RateLimit{Messages: 2, Interval: time.Hour}) || len(ac.SenderRules) != 1 {
			t.Errorf("rate %+v, sender rules %+v", ac.Rate, ac.SenderRules)
		}
		flags := serveFlags{relayNets: stringList{"192.0.2.0/24"}, accept: stringList{"other.example"}}
		ac, err = accessConfig(cfg, flags)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ac.RelayNetworks) != "[192.0.2.0/24]" || fmt.Sprint(ac.AcceptDomains) != "[company.example other.example]" {
			t.Errorf("with flags: networks %v, domains %v; want the flag's network and both domains", ac.RelayNetworks, ac.AcceptDomains)
		}
		if _, err := accessConfig(cfg, serveFlags{relayNets: stringList{"10.1.2.3/8"}}); err == nil || !strings.HasPrefix(err.Error(), `--relay-network "10.1.2.3/8": `) {
			t.Errorf("bad flag network: %v", err)
		}

		// Decisions through the smtpd.Policy adapter.
		fromFile, err := buildAccess(cfg, serveFlags{})
		if err != nil {
			t.Fatal(err)
		}
		withFlags, err := buildAccess(cfg, flags)
		if err != nil {
			t.Fatal(err)
		}
		sess := func(ip string) smtpd.SessionInfo {
			return smtpd.SessionInfo{Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000}}
		}
		path := func(s string) smtp.Path {
			p, err := smtp.ParseAddress(s)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		code := func(r *smtpd.Refusal) int {
			if r == nil {
				return 250
			}
			return r.Reply.Code
		}
		rcpts := []struct {
			policy smtpd.Policy
			client string
			rcpt   string
			want   int
		}{
			{fromFile, "10.1.2.3", "x@anywhere.example", 250},
			{fromFile, "192.0.2.1", "x@anywhere.example", 554},
			{fromFile, "127.0.0.1", "x@anywhere.example", 554}, // networks given: loopback no longer relays
			{fromFile, "192.0.2.1", "x@Company.Example", 250},
			{fromFile, "192.0.2.1", "x@other.example", 554},
			{withFlags, "192.0.2.1", "x@anywhere.example", 250},
			{withFlags, "10.1.2.3", "x@anywhere.example", 554},
			{withFlags, "10.1.2.3", "x@other.example", 250},
			{withFlags, "10.1.2.3", "x@company.example", 250},
		}
		for _, tc := range rcpts {
			if got := code(tc.policy.Rcpt(sess(tc.client), path(tc.rcpt), nil)); got != tc.want {
				t.Errorf("RCPT %s from %s: %d, want %d", tc.rcpt, tc.client, got, tc.want)
			}
		}
		// The sender rule, and the rate limit of 2 per hour per IP, which
		// counts messages at DATA, not at MAIL.
		if r := fromFile.Mail(sess("10.1.2.3"), path("a@elsewhere.example"), nil); r == nil || r.Reply.Code != 553 ||
			!strings.Contains(r.Reason, "sender domain elsewhere.example not allowed") {
			t.Errorf("MAIL from a domain outside the sender rule: %+v, want 553 with the reason", r)
		}
		for i := range 3 {
			if got := code(fromFile.Mail(sess("10.1.2.3"), path("a@company.example"), nil)); got != 250 {
				t.Errorf("MAIL %d: %d, want 250", i+1, got)
			}
		}
		for i, want := range []int{250, 250, 450} {
			if got := code(fromFile.Data(sess("10.1.2.3"), &smtp.Envelope{})); got != want {
				t.Errorf("DATA %d: %d, want %d", i+1, got, want)
			}
		}
	})

	t.Run("routes", func(t *testing.T) {
		table, err := buildRoutes(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := table.Lookup("company.example"); len(r.Hops) != 1 || r.Hops[0].Port != 2526 {
			t.Errorf("company.example: %+v, want the file's route", r)
		}
		table, err = buildRoutes(cfg, []string{"company.example=[127.0.0.1]:2600"})
		if err != nil {
			t.Fatal(err)
		}
		if r := table.Lookup("company.example"); len(r.Hops) != 1 || r.Hops[0].Port != 2600 {
			t.Errorf("company.example with --route: %+v, want the flag's route", r)
		}
	})
}

// TestServeRun runs serve in process: it starts on the configuration file,
// offers STARTTLS and (after it) AUTH, reloads the certificate and the user
// file on a reload request (what SIGHUP sends), and shuts down cleanly when
// its context ends.
func TestServeRun(t *testing.T) {
	fx := newServeFixture(t)
	cfg, err := loadServeConfig(serveFlags{configFile: fx.configFile})
	if err != nil {
		t.Fatal(err)
	}
	var logs, stdout syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	reloads := make(chan chan error)
	go func() {
		done <- serve(ctx, cfg, relayEnv{flags: serveFlags{configFile: fx.configFile}, logger: logger, stdout: &stdout, reloads: reloads})
	}()
	out := waitFor(t, &stdout, "\n")
	addr := strings.TrimSpace(strings.TrimPrefix(out, "ferry serve: listening on "))
	if _, err := netip.ParseAddrPort(addr); err != nil {
		t.Fatalf("stdout %q: no listening address", out)
	}

	roots := x509.NewCertPool()
	roots.AddCert(fx.cert)
	c := dialSMTP(t, addr)
	ehlo := c.cmd("EHLO client.test")
	if !strings.Contains(ehlo, "STARTTLS\r\n") || strings.Contains(ehlo, "AUTH") {
		t.Fatalf("EHLO before TLS: %q, want STARTTLS and no AUTH", ehlo)
	}
	if r := c.cmd("MAIL FROM:<a@company.example>"); !strings.HasPrefix(r, "530 5.7.0 ") {
		t.Fatalf("MAIL before STARTTLS on a require_tls listener: %q", r)
	}
	if got := c.startTLS(roots); !got.Equal(fx.cert) {
		t.Fatal("server showed another certificate than tls_cert")
	}
	if ehlo := c.cmd("EHLO client.test"); !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Fatalf("EHLO in TLS: %q, want AUTH PLAIN LOGIN", ehlo)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))
	if r := c.cmd("AUTH PLAIN " + plain); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("AUTH PLAIN alice: %q", r)
	}
	c.cmd("QUIT")

	// SIGHUP: a new certificate and a new user are taken up.
	newCert := writeCert(t, fx.certFile, fx.keyFile)
	roots.AddCert(newCert)
	hash, err := auth.HashBcrypt("other", 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fx.usersFile, []byte("bob:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloadNow(t, reloads)
	waitFor(t, &logs, "reloaded users file for listener 127.0.0.1:0")
	if !strings.Contains(logs.String(), "reloaded certificate for listener 127.0.0.1:0") {
		t.Fatalf("no certificate reload logged:\n%s", logs.String())
	}
	c = dialSMTP(t, addr)
	c.cmd("EHLO client.test")
	if got := c.startTLS(roots); !got.Equal(newCert) {
		t.Fatal("after SIGHUP the server still shows the old certificate")
	}
	c.cmd("EHLO client.test")
	plain = base64.StdEncoding.EncodeToString([]byte("\x00bob\x00other"))
	if r := c.cmd("AUTH PLAIN " + plain); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("AUTH PLAIN bob after SIGHUP: %q", r)
	}
	c.cmd("QUIT")

	// SIGHUP with a broken certificate: reported, the old one kept.
	if err := os.WriteFile(fx.certFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloadNow(t, reloads)
	waitFor(t, &logs, "reload failed; keeping the certificate in force")
	c = dialSMTP(t, addr)
	c.cmd("EHLO client.test")
	if got := c.startTLS(roots); !got.Equal(newCert) {
		t.Fatal("after a failed reload the server does not show the certificate in force")
	}
	c.cmd("QUIT")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("serve did not return within 15s of cancellation")
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown logged:\n%s", logs.String())
	}
}

// TestServeStartupError checks that serve refuses to start, with the
// listener and the file named, when a listener's certificate is missing.
func TestServeStartupError(t *testing.T) {
	fx := newServeFixture(t)
	cfg, err := loadServeConfig(serveFlags{configFile: fx.configFile})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(fx.certFile)
	var stdout bytes.Buffer
	err = serve(context.Background(), cfg, relayEnv{logger: discardLogger(), stdout: &stdout})
	if err == nil || !strings.Contains(err.Error(), "listener 127.0.0.1:0: loading tls_cert "+fx.certFile) {
		t.Fatalf("serve with a missing certificate: %v", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing: no listener started", stdout.String())
	}
}
