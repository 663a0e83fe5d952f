package testrelay

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
)

// TestNewTestCert: the certificate verifies for 127.0.0.1 and its DNS
// names against Roots, and the written files load as a key pair.
func TestNewTestCert(t *testing.T) {
	c := NewTestCert(t, "mx.test", "mx.test")
	for _, name := range []string{"127.0.0.1", "mx.test"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: c.Roots, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: c.Roots, DNSName: "other.test"}); err == nil {
		t.Error("verified for a name it was not made for")
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c.WriteFiles(t, certFile, keyFile)
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatalf("written files: %v", err)
	}
	if NewTestCert(t, "mx.test").Leaf.SerialNumber.Cmp(c.Leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}
