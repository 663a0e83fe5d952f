package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// tlsFiles are a server certificate for 127.0.0.1 and "localhost", its key,
// and the CA file that trusts it, made at test time (no key is committed).
type tlsFiles struct {
	caFile, certFile, keyFile string
}

// newTLSFiles writes a certificate for 127.0.0.1 and "localhost" with its
// key into a fresh directory; being its own CA, the certificate is also
// the CA file.
func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	c := testrelay.NewTestCert(t, "localhost", "localhost")
	f := tlsFiles{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
	}
	c.WriteFiles(t, f.certFile, f.keyFile)
	if err := os.WriteFile(f.caFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestOutboundTLS: a tls=required route delivers to a hop whose
// certificate verifies against delivery.tls_ca_file, and the delivery log
// line names the TLS version and cipher; without the CA the certificate is
// not trusted and the recipient is deferred with 4.7.5; a hop without
// STARTTLS defers with 4.7.10; tls=may delivers over unverified TLS
// (RFC 3207, RFC 7435, RFC 3463 §3.8).
func TestOutboundTLS(t *testing.T) {
	t.Parallel()
	files := newTLSFiles(t)
	content := testrelay.ReadTestdata(t, "simple-utf8-french.eml")
	withCA := fmt.Sprintf("%s\n[delivery]\ntls_ca_file = %q\n", shortRetry, files.caFile)
	tests := []struct {
		name      string
		sinkTLS   bool   // the sink offers STARTTLS
		config    string // ferry.toml text
		policy    string // the route's tls key
		delivered bool
		logWords  []string // words of one relay log line
	}{
		{"required, CA file", true, withCA, "required", true,
			[]string{"Verified TLS connection established to", "TLSv1.3"}},
		{"required, system roots", true, shortRetry, "required", false,
			[]string{"status=deferred", "451 4.7.5 TLS with"}},
		{"required, no STARTTLS", false, withCA, "required", false,
			[]string{"status=deferred", "451 4.7.10 TLS required by route"}},
		{"may, system roots", true, shortRetry, "may", true,
			[]string{"Untrusted TLS connection established to", "TLSv1.3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var flags []string
			if tc.sinkTLS {
				flags = []string{"--tls-cert", files.certFile, "--tls-key", files.keyFile}
			}
			h := startSink(t, "127.0.0.1:0", flags...)
			r := startRelay(t, tc.config, "", routeTo("example.com", h.Addr)+";tls="+tc.policy)
			id := testrelay.SendOne(t, r.Addr, sender, []string{"user@example.com"}, content)
			if !tc.delivered {
				line := r.WaitLog(t, append([]string{id + ": to=<user@example.com>"}, tc.logWords...)...)
				if n := h.count(t); n != 0 {
					t.Errorf("the sink holds %d messages after %q, want none", n, line)
				}
				if n := len(r.LogLines(id, "status=sent")); n != 0 {
					t.Errorf("%d sent log lines, want none", n)
				}
				return
			}
			sent := r.WaitLog(t, id+": to=<user@example.com>", "tls=TLSv1.3", "cipher=TLS_", "status=sent")
			r.WaitLog(t, tc.logWords...)
			caps := h.waitCaptures(t, 1)
			if len(caps) != 1 || !caps[0].sc.TLS {
				t.Fatalf("the sink holds %d messages (first over TLS: %v), want 1 over TLS; log: %s",
					len(caps), len(caps) > 0 && caps[0].sc.TLS, sent)
			}
			if rest := checkReceived(t, caps[0].data, id); !bytes.Equal(rest, content) {
				t.Errorf("arrived changed at offset %d", testrelay.FirstDiff(rest, content))
			}
		})
	}
}
