package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// tlsFiles are a test CA and a server certificate it signed, for
// 127.0.0.1 and "localhost", made at test time (no key is committed).
type tlsFiles struct {
	caFile, certFile, keyFile string
}

// newTLSFiles writes a CA certificate and a server certificate with its
// key into a fresh directory.
func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Ferry test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := tlsFiles{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
	}
	for file, block := range map[string]*pem.Block{
		f.caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		f.certFile: {Type: "CERTIFICATE", Bytes: der},
		f.keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
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
