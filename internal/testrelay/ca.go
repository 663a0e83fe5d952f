package testrelay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// TestCA is a certificate authority made at test time, for chains a
// server presents (DANE-TA, PKIX checks against a private root).
type TestCA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// Roots is a pool that trusts the CA.
	Roots *x509.CertPool
	// CertPEM is the CA certificate in PEM.
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewTestCA makes a fresh ECDSA CA with the common name cn, valid from an
// hour ago for a day.
func NewTestCA(t testing.TB, cn string) TestCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	c := signCert(t, tmpl, tmpl, key, key)
	roots := x509.NewCertPool()
	roots.AddCert(c.Leaf)
	return TestCA{Cert: c.Leaf, Roots: roots, CertPEM: c.CertPEM, key: key}
}

// Issue makes a server certificate signed by the CA for 127.0.0.1 and
// dnsNames, valid from notBefore to notAfter (a past notAfter makes an
// expired certificate). The TestCert's chain and CertPEM hold the leaf,
// then the CA certificate; its Roots trust the CA.
func (ca TestCA) Issue(t testing.TB, cn string, notBefore, notAfter time.Time, dnsNames ...string) TestCert {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(t),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	c := signCert(t, tmpl, ca.Cert, key, ca.key)
	c.TLS.Certificate = append(c.TLS.Certificate, ca.Cert.Raw)
	c.CertPEM = append(c.CertPEM, ca.CertPEM...)
	c.Roots = ca.Roots
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serialNumber(t testing.TB) *big.Int {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return serial
}
