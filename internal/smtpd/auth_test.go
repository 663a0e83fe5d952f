package smtpd

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// testUsers is an Authenticator with clear-text passwords; the user "broken"
// makes the check fail.
type testUsers map[string]string

func (u testUsers) Authenticate(user, password string) (bool, error) {
	if user == "broken" {
		return false, errors.New("user database unavailable")
	}
	p, ok := u[user]
	return ok && p == password, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// plainIR is an AUTH PLAIN initial response (RFC 4616).
func plainIR(authz, user, pass string) string { return b64(authz + "\x00" + user + "\x00" + pass) }

// authConfig is a plaintext listener with AUTH allowed, as on loopback, and
// a tiny failure delay.
func authConfig() Config {
	cfg := testConfig()
	cfg.Auth = testUsers{"alice@example.com": "s3cret pass", "bob": "hunter2"}
	cfg.AllowInsecureAuth = true
	cfg.AuthFailureDelay = time.Millisecond
	return cfg
}

func TestAuthScripts(t *testing.T) {
	greet := lines("S: 220 mx.test ESMTP Ferry", "C: EHLO client.test",
		"S: 250-mx.test", "S: 250-PIPELINING", "S: 250-SIZE 52428800", "S: 250-8BITMIME",
		"S: 250-ENHANCEDSTATUSCODES", "S: 250-DSN", "S: 250-SMTPUTF8", "S: 250-CHUNKING",
		"S: 250-BINARYMIME", "S: 250 AUTH PLAIN LOGIN")
	alice := plainIR("", "alice@example.com", "s3cret pass")
	tests := []struct {
		name   string
		script []string
	}{
		{"plain with initial response", script(greet, lines(
			"C: AUTH PLAIN "+alice,
			"S: 235 2.7.0 Authentication successful",
			"C: AUTH PLAIN "+alice,
			"S: 503 5.5.1 Error: already authenticated"))},
		{"plain with authorization identity", script(greet, lines(
			"C: AUTH PLAIN "+plainIR("alice@example.com", "alice@example.com", "s3cret pass"),
			"S: 235 2.7.0 Authentication successful"))},
		{"plain as another identity", script(greet, lines(
			"C: AUTH PLAIN "+plainIR("bob", "alice@example.com", "s3cret pass"),
			"S: 535 5.7.8 Authentication credentials invalid"))},
		{"plain after a challenge", script(greet, lines(
			"C: AUTH plain",
			"S: 334 ",
			"C: "+alice,
			"S: 235 2.7.0 Authentication successful"))},
		{"plain wrong password", script(greet, lines(
			"C: AUTH PLAIN "+plainIR("", "alice@example.com", "wrong"),
			"S: 535 5.7.8 Authentication credentials invalid",
			"C: AUTH PLAIN "+plainIR("", "nobody", "s3cret pass"),
			"S: 535 5.7.8 Authentication credentials invalid",
			"C: AUTH PLAIN "+b64("no separators"),
			"S: 535 5.7.8 Authentication credentials invalid",
			"C: AUTH PLAIN =",
			"S: 535 5.7.8 Authentication credentials invalid",
			"C: AUTH PLAIN "+alice,
			"S: 235 2.7.0 Authentication successful"))},
		{"login", script(greet, lines(
			"C: AUTH LOGIN",
			"S: 334 VXNlcm5hbWU6",
			"C: "+b64("bob"),
			"S: 334 UGFzc3dvcmQ6",
			"C: "+b64("hunter2"),
			"S: 235 2.7.0 Authentication successful"))},
		{"login with initial response", script(greet, lines(
			"C: AUTH LOGIN "+b64("bob"),
			"S: 334 UGFzc3dvcmQ6",
			"C: "+b64("hunter2"),
			"S: 235 2.7.0 Authentication successful"))},
		{"login failure", script(greet, lines(
			"C: AUTH LOGIN",
			"S: 334 VXNlcm5hbWU6",
			"C: "+b64("bob"),
			"S: 334 UGFzc3dvcmQ6",
			"C: "+b64("hunter3"),
			"S: 535 5.7.8 Authentication credentials invalid",
			"C: MAIL FROM:<bob@example.com> AUTH=<>",
			"S: 250 2.1.0 Ok"))},
		{"cancel", script(greet, lines(
			"C: AUTH LOGIN",
			"S: 334 VXNlcm5hbWU6",
			"C: *",
			"S: 501 5.7.0 Authentication aborted",
			"C: AUTH PLAIN",
			"S: 334 ",
			"C: *",
			"S: 501 5.7.0 Authentication aborted",
			"C: NOOP",
			"S: 250 2.0.0 Ok"))},
		{"malformed base64", script(greet, lines(
			"C: AUTH PLAIN !!!!",
			"S: 501 5.5.2 Error: malformed base64 in AUTH response",
			"C: AUTH PLAIN AGFsaWNl=",
			"S: 501 5.5.2 Error: malformed base64 in AUTH response",
			"C: AUTH LOGIN",
			"S: 334 VXNlcm5hbWU6",
			"C: Ym9i@",
			"S: 501 5.5.2 Error: malformed base64 in AUTH response",
			"C: AUTH LOGIN",
			"S: 334 VXNlcm5hbWU6",
			"C: ",
			"S: 501 5.5.2 Error: malformed base64 in AUTH response"))},
		{"sequence and syntax", script(lines(
			"S: 220 mx.test ESMTP Ferry",
			"C: AUTH PLAIN "+alice,
			"S: 503 5.5.1 Error: send EHLO first",
			"C: HELO client.test",
			"S: 250 mx.test",
			"C: AUTH PLAIN "+alice,
			"S: 503 Error: send EHLO first"), greet[1:], lines(
			"C: AUTH",
			"S: 501 5.5.4 Syntax: AUTH mechanism [initial-response]",
			"C: AUTH CRAM-MD5",
			"S: 504 5.5.4 Unrecognized authentication type",
			"C: MAIL FROM:<a@example.com>",
			"S: 250 2.1.0 Ok",
			"C: AUTH PLAIN "+alice,
			"S: 503 5.5.1 Error: MAIL transaction in progress"))},
		{"temporary failure", script(greet, lines(
			"C: AUTH PLAIN "+plainIR("", "broken", "x"),
			"S: 454 4.7.0 Temporary authentication failure"))},
		{"AUTH parameter", script(greet, lines(
			"C: MAIL FROM:<a@example.com> AUTH=a+zz",
			"S: 501 5.5.4 Bad AUTH parameter syntax",
			"C: MAIL FROM:<a@example.com> AUTH=not-a-mailbox",
			"S: 501 5.5.4 Bad AUTH parameter syntax",
			"C: MAIL FROM:<a@example.com> AUTH=a+2Bb@example.com",
			"S: 250 2.1.0 Ok"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startServer(t, authConfig(), &memStore{}, nil)
			runScript(t, addr, tc.script)
		})
	}
}

// TestAuthFailureDelay: a failed AUTH is answered no sooner than
// AuthFailureDelay; a successful one is not delayed at all (checked with
// a delay of an hour, so a busy machine cannot make the check fail).
func TestAuthFailureDelay(t *testing.T) {
	cfg := authConfig()
	cfg.AuthFailureDelay = 150 * time.Millisecond
	_, addr := startServer(t, cfg, &memStore{}, nil)
	c := dial(t, addr)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	c.ehlo()
	start := time.Now()
	c.send("AUTH PLAIN " + plainIR("", "bob", "wrong") + "\r\n")
	c.expect("535 5.7.8 Authentication credentials invalid\r\n")
	if d := time.Since(start); d < cfg.AuthFailureDelay {
		t.Errorf("failure answered after %v, want at least %v", d, cfg.AuthFailureDelay)
	}

	cfg.AuthFailureDelay = time.Hour
	_, addr = startServer(t, cfg, &memStore{}, nil)
	c = dial(t, addr)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	c.ehlo()
	c.send("AUTH PLAIN " + plainIR("", "bob", "hunter2") + "\r\n")
	c.expect("235 2.7.0 Authentication successful\r\n")
}

func TestAuthLockout(t *testing.T) {
	cfg := authConfig()
	cfg.AuthMaxFailures = 3
	cfg.AuthLockoutWindow = time.Minute
	_, addr := startServer(t, cfg, &memStore{}, nil)
	bad := "AUTH PLAIN " + plainIR("", "bob", "wrong") + "\r\n"
	c := dial(t, addr)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	c.ehlo()
	for range 2 {
		c.send(bad)
		c.expect("535 5.7.8 Authentication credentials invalid\r\n")
	}
	c.send(bad)
	c.expect("421 4.7.0 mx.test Error: too many failed authentications, try again later\r\n")
	c.expectClosed()
	// The address stays locked out, even for the right password.
	c2 := dial(t, addr)
	c2.expect("220 mx.test ESMTP Ferry\r\n")
	c2.ehlo()
	c2.send("AUTH PLAIN " + plainIR("", "bob", "hunter2") + "\r\n")
	c2.expect("421 4.7.0 mx.test Error: too many failed authentications, try again later\r\n")
	c2.expectClosed()
}

func TestAuthLimiterWindow(t *testing.T) {
	l := newAuthLimiter(3, time.Minute)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at     time.Duration
		ip     string
		fail   bool
		locked bool
	}{
		{0, "192.0.2.1", true, false},
		{10 * time.Second, "192.0.2.1", true, false},
		{20 * time.Second, "192.0.2.2", true, false},
		{30 * time.Second, "192.0.2.1", true, true},
		{50 * time.Second, "192.0.2.1", false, true},
		{61 * time.Second, "192.0.2.1", false, false}, // the first failure left the window
		{62 * time.Second, "192.0.2.1", true, true},
		{200 * time.Second, "192.0.2.1", false, false},
		{200 * time.Second, "192.0.2.2", false, false},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		var got bool
		if s.fail {
			got = l.fail(s.ip, now)
		} else {
			got = l.locked(s.ip, now)
		}
		if got != s.locked {
			t.Errorf("step %d: locked %v, want %v", i, got, s.locked)
		}
	}
	l.fail("192.0.2.9", t0.Add(400*time.Second)) // sweeps
	if len(l.failures) != 1 {
		t.Errorf("%d addresses remembered after the window, want 1", len(l.failures))
	}
	off := newAuthLimiter(-1, time.Minute)
	for range 100 {
		if off.fail("192.0.2.1", t0) {
			t.Fatal("disabled limiter locked out")
		}
	}
}

func TestAuthNotOfferedWithoutTLS(t *testing.T) {
	ts := newTLSSetup(t)
	ts.cfg.Auth = testUsers{"bob": "hunter2"}
	_, addr := startServer(t, ts.cfg, &memStore{}, nil)
	c := dial(t, addr)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	if l := c.ehlo(); hasLine(l, authKeyword) {
		t.Fatalf("AUTH offered on plaintext: %q", l)
	}
	c.send("AUTH PLAIN " + plainIR("", "bob", "hunter2") + "\r\n")
	c.expect("538 5.7.11 Encryption required for requested authentication mechanism\r\n")
	c.send("MAIL FROM:<a@example.com> AUTH=<>\r\n")
	c.expect("555 5.5.4 Unsupported option: AUTH\r\n")
	c.send("RSET\r\n")
	c.expect("250 2.0.0 Ok\r\n")
	c.startTLS(ts.pool)
	c.ehlo()
	c.send("AUTH PLAIN " + plainIR("", "bob", "hunter2") + "\r\n")
	c.expect("235 2.7.0 Authentication successful\r\n")
}

func TestAuthParameter(t *testing.T) {
	cfg := authConfig()
	cfg.TrustAuthParam = func(user, mailbox string) bool {
		return user == "bob" && strings.HasSuffix(mailbox, "@lists.example")
	}
	for _, tc := range []struct {
		name, auth, param, want string
	}{
		{"unauthenticated", "", "AUTH=a@example.com", "<>"},
		{"null", "alice@example.com", "AUTH=<>", "<>"},
		{"own mailbox", "alice@example.com", "AUTH=ALICE@example.com", "ALICE@example.com"},
		{"other mailbox", "alice@example.com", "AUTH=carol@example.com", "<>"},
		{"trusted by the hook", "bob", "AUTH=list+2Bowner@lists.example", "list+owner@lists.example"},
		{"none given", "bob", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.name == "own mailbox" || tc.name == "other mailbox" || tc.name == "null" {
				c.TrustAuthParam = nil // the default: only one's own mailbox
			}
			store := &memStore{}
			_, addr := startServer(t, c, store, nil)
			cl := dial(t, addr)
			cl.expect("220 mx.test ESMTP Ferry\r\n")
			cl.ehlo()
			if tc.auth != "" {
				cl.send("AUTH PLAIN " + plainIR("", tc.auth, cfg.Auth.(testUsers)[tc.auth]) + "\r\n")
				cl.expect("235 2.7.0 Authentication successful\r\n")
			}
			cl.send("MAIL FROM:<x@example.com> " + tc.param + "\r\nRCPT TO:<y@example.org>\r\nDATA\r\n")
			cl.expect("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
			cl.send("x\r\n.\r\n")
			cl.expect("250 2.0.0 Ok: queued as ID1\r\n")
			m := store.messages()[0]
			if m.env.Auth != tc.want {
				t.Errorf("envelope AUTH %q, want %q", m.env.Auth, tc.want)
			}
			wantProto := "ESMTP"
			if tc.auth != "" {
				wantProto = "ESMTPA"
			}
			if m.env.Client.User != tc.auth || m.env.Client.Protocol != wantProto || m.tx.Session.User != tc.auth {
				t.Errorf("client %+v, session user %q", m.env.Client, m.tx.Session.User)
			}
		})
	}
}

// TestAuthRedacted checks that no credential reaches the transcript or the
// log: not the initial response, not LOGIN's continuation lines, not a
// cancelled or failed exchange.
func TestAuthRedacted(t *testing.T) {
	dir := t.TempDir()
	var logBuf syncBuffer
	cfg := authConfig()
	cfg.TranscriptDir = dir
	cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	srv, addr := startServer(t, cfg, &memStore{}, nil)
	c := dial(t, addr)
	c.expect("220 mx.test ESMTP Ferry\r\n")
	c.ehlo()
	steps := []struct{ send, want string }{
		{"AUTH PLAIN " + plainIR("", "alice@example.com", "wrong-pw-1"), "535 "},
		{"AUTH PLAIN", "334 "},
		{plainIR("", "alice@example.com", "wrong-pw-2"), "535 "},
		{"AUTH LOGIN " + b64("bob"), "334 "},
		{"*", "501 "},
		{"AUTH LOGIN", "334 "},
		{b64("bob"), "334 "},
		{b64("hunter2"), "235 "},
	}
	for _, s := range steps {
		c.send(s.send + "\r\n")
		c.expectPrefix(s.want)
	}
	c.send("QUIT\r\n")
	c.expectPrefix("221 ")
	c.expectClosed()
	tr := onlyTranscript(t, srv, dir)
	if n := strings.Count(string(tr), "C: <redacted>\n"); n != 4 {
		t.Errorf("%d redacted continuation lines, want 4:\n%s", n, tr)
	}
	for _, want := range []string{"C: AUTH PLAIN <redacted>\n", "C: AUTH LOGIN <redacted>\n", "C: AUTH PLAIN\n", "C: AUTH LOGIN\n",
		"S: 334 VXNlcm5hbWU6\n", "S: 235 2.7.0 Authentication successful\n"} {
		if !strings.Contains(string(tr), want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	log := logBuf.String()
	for _, secret := range []string{"wrong-pw", "hunter2", b64("hunter2"), b64("bob"), plainIR("", "alice@example.com", "wrong-pw-1")} {
		if strings.Contains(string(tr), secret) || strings.Contains(log, secret) {
			t.Errorf("credential %q recorded:\n%s\n%s", secret, tr, log)
		}
	}
	if !strings.Contains(log, "msg=authenticated") || !strings.Contains(log, "user=bob") || !strings.Contains(log, `msg="authentication failed"`) {
		t.Errorf("log lacks the authentication events:\n%s", log)
	}
}
