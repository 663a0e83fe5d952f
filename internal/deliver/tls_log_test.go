package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"regexp"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
)

// TestTLSLogging: every STARTTLS with a hop logs one line, established
// (version, cipher, verified or not) or failed, and every delivery over TLS
// names the version and cipher in its status line, as the handshake
// negotiated them.
func TestTLSLogging(t *testing.T) {
	cert, roots := testCerts(t)
	tests := []struct {
		name     string
		mode     route.TLSMode
		roots    bool
		maxVer   uint16 // the hop's highest TLS version; 0: Go's default
		refuse   bool   // the hop answers STARTTLS with 454
		state    queue.RcptState
		wantLine string // regexp for the handshake line
		version  string // in the status line; "" for none
		verified bool
	}{
		{"may, unknown CA", route.TLSMay, false, 0, false, queue.Sent,
			`Untrusted TLS connection established to \S+: TLSv1\.3 with cipher TLS_\w+`, "TLSv1.3", false},
		{"may, known CA", route.TLSMay, true, 0, false, queue.Sent,
			`Verified TLS connection established to \S+: TLSv1\.3 with cipher TLS_\w+`, "TLSv1.3", true},
		{"required, verified, TLS 1.2", route.TLSRequired, true, tls.VersionTLS12, false, queue.Sent,
			`Verified TLS connection established to \S+: TLSv1\.2 with cipher TLS_ECDHE_\w+`, "TLSv1.2", true},
		{"required, unknown CA", route.TLSRequired, false, 0, false, queue.Deferred,
			`TLS handshake with \S+ failed: .*certificate`, "", false},
		{"may, STARTTLS refused", route.TLSMay, true, 0, true, queue.Sent,
			`STARTTLS refused by \S+: 454 4\.7\.0`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hop := newFakeHop(t, "STARTTLS", "PIPELINING")
			hop.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tt.maxVer}
			if tt.refuse {
				hop.script = func(verb, _ string, _, _ int) string {
					if verb == "STARTTLS" {
						return "454 4.7.0 TLS not available due to temporary reason"
					}
					return ""
				}
			}
			hop.start()
			q := newMemQueue()
			rt := hop.route()
			rt.Policy.TLS = tt.mode
			a, logs := testAgent(t, q, rt, func(c *Config) {
				c.RootCAs = x509.NewCertPool()
				if tt.roots {
					c.RootCAs = roots
				}
			})
			a.DeliverLease(context.Background(), lease(testMessage("T1", plainMsg, "x@hop.test")))
			q.expect(t, "T1", 0, tt.state, "")
			out := logs.String()
			var hs, status []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "event=tls") {
					hs = append(hs, l)
				}
				if strings.Contains(l, "T1: to=<x@hop.test>") {
					status = append(status, l)
				}
			}
			if len(hs) != 1 || !regexp.MustCompile(tt.wantLine).MatchString(hs[0]) {
				t.Fatalf("handshake log lines %q, want one matching %q\nlog:\n%s", hs, tt.wantLine, out)
			}
			if len(status) != 1 {
				t.Fatalf("status lines %q, want one", status)
			}
			if tt.version == "" {
				if strings.Contains(status[0], "tls=") || strings.Contains(status[0], "cipher=") {
					t.Errorf("status line of a plaintext delivery names TLS: %s", status[0])
				}
				return
			}
			// The text form and the attributes both carry the version and
			// the cipher; the attribute of the handshake line agrees.
			m := regexp.MustCompile(`, tls=(TLSv1\.[23]), cipher=(TLS_\w+), `).FindStringSubmatch(status[0])
			if m == nil || m[1] != tt.version {
				t.Fatalf("status line %q lacks \", tls=%s, cipher=...\"", status[0], tt.version)
			}
			for _, attr := range []string{" tls=" + m[1], " cipher=" + m[2], " tls_verified=" + boolWord(tt.verified)} {
				if !strings.Contains(status[0], attr) {
					t.Errorf("status line %q lacks attribute %q", status[0], attr)
				}
				if !strings.Contains(hs[0], attr) {
					t.Errorf("handshake line %q lacks attribute %q", hs[0], attr)
				}
			}
			if id := tls.CipherSuiteName(cipherID(t, m[2])); id != m[2] {
				t.Errorf("cipher %q is not a Go cipher suite name", m[2])
			}
		})
	}
}

// boolWord is slog's text form of b.
func boolWord(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// cipherID finds the suite ID of a cipher suite name.
func cipherID(t *testing.T, name string) uint16 {
	t.Helper()
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if cs.Name == name {
			return cs.ID
		}
	}
	t.Errorf("no cipher suite named %q", name)
	return 0
}
