package smtpd

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// testCert writes a fresh certificate for mx.test and 127.0.0.1 with common
// name cn to dir as cert.pem and key.pem, and returns a pool that trusts it.
func testCert(t *testing.T, dir, cn string) *x509.CertPool {
	t.Helper()
	c := testrelay.NewTestCert(t, cn, "mx.test")
	c.WriteFiles(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	return c.Roots
}

// tlsSetup is a configuration with TLS from a CertStore in a temporary
// directory, and the pool a client needs to trust it.
type tlsSetup struct {
	cfg   Config
	store *CertStore
	pool  *x509.CertPool
	dir   string
}

func newTLSSetup(t *testing.T) *tlsSetup {
	t.Helper()
	dir := t.TempDir()
	pool := testCert(t, dir, "first")
	store, err := NewCertStore(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.TLS = store.TLSConfig()
	return &tlsSetup{cfg: cfg, store: store, pool: pool, dir: dir}
}

// clientTLS returns the client side configuration trusting pool.
func clientTLS(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, ServerName: "mx.test"}
}

// startTLS sends STARTTLS, checks the 220, and continues the session over
// TLS. It returns the connection state.
func (c *client) startTLS(pool *x509.CertPool) tls.ConnectionState {
	c.t.Helper()
	c.send("STARTTLS\r\n")
	c.expect("220 2.0.0 Ready to start TLS\r\n")
	if n := c.r.Buffered(); n != 0 {
		c.t.Fatalf("%d octets after the 220", n)
	}
	return c.handshake(pool)
}

// handshake runs a TLS handshake on the connection and switches to it.
func (c *client) handshake(pool *x509.CertPool) tls.ConnectionState {
	c.t.Helper()
	tc := tls.Client(c.conn, clientTLS(pool))
	tc.SetDeadline(time.Now().Add(clientWait))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
	return tc.ConnectionState()
}

// ehlo sends EHLO and returns the reply's lines.
func (c *client) ehlo() []string {
	c.t.Helper()
	c.send("EHLO client.test\r\n")
	var lines []string
	for range 50 {
		l := c.expectPrefix("250")
		lines = append(lines, strings.TrimRight(l[4:], "\r\n"))
		if l[3] == ' ' {
			return lines
		}
	}
	c.t.Fatal("EHLO reply too long")
	return nil
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestStartTLS(t *testing.T) {
	ts := newTLSSetup(t)
	ts.cfg.Keywords = append(ts.cfg.Keywords, KwRequireTLS)
	ts.cfg.Auth = testUsers{"alice@example.com": "secret"}
	store := &memStore{}
	_, addr := startServer(t, ts.cfg, store, nil)
	c := dial(t, addr)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	before := c.ehlo()
	if !hasLine(before, "STARTTLS") || hasLine(before, authKeyword) || hasLine(before, "REQUIRETLS") {
		t.Fatalf("EHLO before TLS: %q", before)
	}
	c.send("MAIL FROM:<a@example.com>\r\n")
	c.expect("250 2.1.0 Ok\r\n")
	c.send("STARTTLS\r\n")
	c.expect("503 5.5.1 Error: MAIL transaction in progress\r\n")
	c.send("RSET\r\n")
	c.expect("250 2.0.0 Ok\r\n")
	st := c.startTLS(ts.pool)
	if st.Version < tls.VersionTLS12 {
		t.Fatalf("negotiated version %x", st.Version)
	}
	// RFC 3207 §4.2: the server forgot the EHLO.
	c.send("MAIL FROM:<a@example.com>\r\n")
	c.expect("503 5.5.1 Error: send HELO/EHLO first\r\n")
	after := c.ehlo()
	if hasLine(after, "STARTTLS") || !hasLine(after, authKeyword) || !hasLine(after, "REQUIRETLS") {
		t.Fatalf("EHLO after TLS: %q", after)
	}
	c.send("STARTTLS\r\n")
	c.expect("503 5.5.1 Error: TLS already active\r\n")
	c.send("MAIL FROM:<a@example.com> REQUIRETLS\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
	c.expect("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
	// REQUIRETLS overrides a TLS-Required: No field (RFC 8689 §5).
	c.send("Subject: x\r\nTLS-Required: No\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1\r\n221 2.0.0 Bye\r\n")
	msgs := store.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored", len(msgs))
	}
	m := msgs[0]
	wantVersion := strings.Replace(tls.VersionName(st.Version), "TLS ", "TLSv", 1)
	wantCipher := tls.CipherSuiteName(st.CipherSuite)
	if !m.env.Client.TLS || m.env.Client.Protocol != "ESMTPS" || !m.env.RequireTLS || m.env.TLSOptional || m.env.Client.User != "" {
		t.Errorf("client info %+v, requiretls %v", m.env.Client, m.env.RequireTLS)
	}
	if m.tx.Session.TLSVersion != wantVersion || m.tx.Session.TLSCipher != wantCipher || m.tx.Session.Helo != "client.test" {
		t.Errorf("session info %+v", m.tx.Session)
	}
	head := "Received: from client.test ([127.0.0.1])\r\n\t(using " + wantVersion + " with cipher " + wantCipher +
		")\r\n\tby mx.test (Ferry) with ESMTPS id ID1\r\n"
	if !strings.HasPrefix(string(m.body), head) {
		t.Errorf("body starts %q, want %q", m.body[:min(len(m.body), 200)], head)
	}
}

// TestStartTLSPipelinedInjection is the CVE-2011-0411 case: commands sent
// in the same packet as STARTTLS must never run, before or after the
// handshake.
func TestStartTLSPipelinedInjection(t *testing.T) {
	for _, tc := range []struct {
		name, injected string
	}{
		{"transaction", "MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.org>\r\n"},
		{"ehlo", "EHLO evil.example\r\n"},
		{"noop", "NOOP\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTLSSetup(t)
			var logBuf syncBuffer
			ts.cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
			store := &memStore{}
			_, addr := startServer(t, ts.cfg, store, nil)
			c := dial(t, addr)
			c.expect("220 mx.test ESMTP Ferry\r\n")
			c.ehlo()
			c.send("STARTTLS\r\n" + tc.injected)
			c.expect("220 2.0.0 Ready to start TLS\r\n")
			c.handshake(ts.pool)
			// The first reply over TLS answers our NOOP, not an injected
			// command; and the injected EHLO/MAIL left no state behind.
			c.send("NOOP\r\n")
			c.expect("250 2.0.0 Ok\r\n")
			c.send("MAIL FROM:<a@example.com>\r\n")
			c.expect("503 5.5.1 Error: send HELO/EHLO first\r\n")
			c.ehlo()
			c.send("RCPT TO:<victim@example.org>\r\n")
			c.expect("503 5.5.1 Error: need MAIL command\r\n")
			c.send("QUIT\r\n")
			c.expect("221 2.0.0 Bye\r\n")
			c.expectClosed()
			if n := len(store.messages()); n != 0 {
				t.Errorf("%d messages stored", n)
			}
			// The warning is logged before the handshake, so it is there now.
			if !strings.Contains(logBuf.String(), "discarded input pipelined after STARTTLS") {
				t.Errorf("log lacks the discard warning:\n%s", logBuf.String())
			}
		})
	}
}

func TestRequireTLS(t *testing.T) {
	ts := newTLSSetup(t)
	ts.cfg.RequireTLS = true
	ts.cfg.Auth = testUsers{"alice@example.com": "secret"}
	ts.cfg.AllowInsecureAuth = true // RequireTLS wins
	_, addr := startServer(t, ts.cfg, &memStore{}, nil)
	c := dial(t, addr)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	if l := c.ehlo(); hasLine(l, authKeyword) || !hasLine(l, "STARTTLS") {
		t.Fatalf("EHLO: %q", l)
	}
	for _, cmd := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.org>", "DATA", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="} {
		c.send(cmd + "\r\n")
		c.expect("530 5.7.0 Must issue a STARTTLS command first\r\n")
	}
	// BDAT gets 530 too, and its chunk (here holding a command line) is
	// read and discarded, so the session stays in step (RFC 3030 §2).
	chunk := "MAIL FROM:<a@example.com>\r\n"
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%sNOOP\r\n", len(chunk), chunk))
	c.expect("530 5.7.0 Must issue a STARTTLS command first\r\n250 2.0.0 Ok\r\n")
	c.startTLS(ts.pool)
	c.ehlo()
	c.send("MAIL FROM:<a@example.com>\r\n")
	c.expect("250 2.1.0 Ok\r\n")
}

func TestImplicitTLS(t *testing.T) {
	ts := newTLSSetup(t)
	ts.cfg.ImplicitTLS = true
	ts.cfg.Auth = testUsers{"alice@example.com": "secret"}
	store := &memStore{}
	_, addr := startServer(t, ts.cfg, store, nil)
	c := dial(t, addr)
	c.handshake(ts.pool)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	if l := c.ehlo(); hasLine(l, "STARTTLS") || !hasLine(l, authKeyword) {
		t.Fatalf("EHLO: %q", l)
	}
	c.send("STARTTLS\r\n")
	c.expect("503 5.5.1 Error: TLS already active\r\n")
	c.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\n")
	c.expect("235 2.7.0 Authentication successful\r\n")
	c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
	c.expect("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1\r\n")
	m := store.messages()[0]
	if m.env.Client.Protocol != "ESMTPSA" || m.env.Client.User != "alice@example.com" || !m.env.Client.TLS {
		t.Errorf("client info %+v", m.env.Client)
	}
	if !strings.Contains(string(m.body), " with ESMTPSA id ID1") {
		t.Errorf("Received field: %q", m.body)
	}

	// A plaintext client gets no greeting: the server waits for a handshake
	// and drops the connection when what comes is not one.
	p := dial(t, addr)
	p.send("EHLO client.test\r\n")
	p.expectClosed()
}

func TestCertReload(t *testing.T) {
	ts := newTLSSetup(t)
	_, addr := startServer(t, ts.cfg, &memStore{}, nil)
	subject := func(pool *x509.CertPool) string {
		c := dial(t, addr)
		c.expect("220 mx.test ESMTP Ferry\r\n")
		c.ehlo()
		st := c.startTLS(pool)
		return st.PeerCertificates[0].Subject.CommonName
	}
	if cn := subject(ts.pool); cn != "first" {
		t.Fatalf("certificate %q, want first", cn)
	}
	pool2 := testCert(t, ts.dir, "second")
	if err := ts.store.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := subject(pool2); cn != "second" {
		t.Fatalf("after reload: certificate %q, want second", cn)
	}
	// A broken file keeps the certificate in use.
	if err := os.WriteFile(filepath.Join(ts.dir, "key.pem"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.store.Reload(); err == nil || !strings.Contains(err.Error(), "key.pem") {
		t.Fatalf("reload of a broken key: %v", err)
	}
	if cn := subject(pool2); cn != "second" {
		t.Fatalf("after failed reload: certificate %q, want second", cn)
	}
}

func TestTLSMinimumVersion(t *testing.T) {
	ts := newTLSSetup(t)
	ts.cfg.TLS.MinVersion = tls.VersionTLS10 // raised to 1.2 by the server
	_, addr := startServer(t, ts.cfg, &memStore{}, nil)
	c := dial(t, addr)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	c.ehlo()
	c.send("STARTTLS\r\n")
	c.expect("220 2.0.0 Ready to start TLS\r\n")
	cfg := clientTLS(ts.pool)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(clientWait))
	if err := tc.Handshake(); err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestTLSConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"implicit without cert", func(c *Config) { c.ImplicitTLS = true }, "needs a certificate"},
		{"required without cert", func(c *Config) { c.RequireTLS = true }, "needs a certificate"},
		{"empty tls config", func(c *Config) { c.TLS = &tls.Config{} }, "no certificate"},
		{"auth never offered", func(c *Config) { c.Auth = testUsers{} }, "never be offered"},
	} {
		cfg := testConfig()
		tc.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	cfg := testConfig()
	cfg.Auth = testUsers{}
	cfg.AllowInsecureAuth = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("insecure auth: %v", err)
	}
}

// handshake12 sends STARTTLS on a new session and runs a TLS 1.2
// handshake offering suites (nil: the defaults).
func handshake12(t *testing.T, addr string, pool *x509.CertPool, suites []uint16) (*tls.Conn, error) {
	t.Helper()
	c := dial(t, addr)
	c.expectPrefix("220 ")
	c.ehlo()
	c.send("STARTTLS\r\n")
	c.expect("220 2.0.0 Ready to start TLS\r\n")
	cfg := clientTLS(pool)
	cfg.MaxVersion = tls.VersionTLS12
	cfg.CipherSuites = suites
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	return tc, tc.Handshake()
}

// TestNoCBCSHA1Inbound: a client that offers only CBC suites with SHA-1
// MACs in TLS 1.2 finds no suite in common; AEAD suites still work.
func TestNoCBCSHA1Inbound(t *testing.T) {
	s := newTLSSetup(t)
	_, addr := startServer(t, s.cfg, &memStore{}, nil)
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}
	if tc, err := handshake12(t, addr, s.pool, cbc); err == nil {
		t.Fatalf("handshake with CBC-SHA1 suites only succeeded: %s", tls.CipherSuiteName(tc.ConnectionState().CipherSuite))
	}
	tc, err := handshake12(t, addr, s.pool, nil)
	if err != nil {
		t.Fatalf("TLS 1.2 handshake with the default suites: %v", err)
	}
	if name := tls.CipherSuiteName(tc.ConnectionState().CipherSuite); !strings.Contains(name, "GCM") && !strings.Contains(name, "CHACHA20") {
		t.Errorf("TLS 1.2 negotiated %s, want an AEAD suite", name)
	}
}
