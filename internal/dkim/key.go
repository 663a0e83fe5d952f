package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Algorithm is a DKIM signing algorithm (RFC 6376 §3.3, RFC 8463).
type Algorithm string

// The algorithms Ferry signs with. rsa-sha1 is not among them (RFC 8301
// §3.1 forbids it).
const (
	RSASHA256     Algorithm = "rsa-sha256"
	Ed25519SHA256 Algorithm = "ed25519-sha256"
)

// MinRSABits is the smallest RSA key Ferry signs with. RFC 8301 §3.2
// requires at least 1024 bits and recommends 2048; Ferry requires 2048.
const MinRSABits = 2048

// ParseAlgorithm parses "rsa-sha256" or "ed25519-sha256".
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(strings.ToLower(s)); a {
	case RSASHA256, Ed25519SHA256:
		return a, nil
	}
	return "", fmt.Errorf("%q is not rsa-sha256 or ed25519-sha256", s)
}

// keyType is the k= value of the key record for a.
func (a Algorithm) keyType() string {
	if a == Ed25519SHA256 {
		return "ed25519"
	}
	return "rsa"
}

// Key is one signing key: the signing domain (d=), the selector (s=) and
// the private key.
type Key struct {
	// Domain is the signing domain (SDID, RFC 6376 §3.5 d=), lower case.
	Domain string
	// Selector is the s= value; the public key is published at
	// Selector._domainkey.Domain (RFC 6376 §3.6.2.1).
	Selector string
	// Algorithm is what Signer signs with.
	Algorithm Algorithm
	// Signer is the private key.
	Signer crypto.Signer
	// File is where the key was read from, for messages.
	File string
}

// Name returns the DNS name of the key record,
// "selector._domainkey.domain".
func (k *Key) Name() string { return k.Selector + "._domainkey." + k.Domain }

// LoadKey reads a PEM private key (PKCS #8, or PKCS #1 for RSA) for
// domain and selector and checks that it fits alg: an RSA key of at least
// MinRSABits bits for rsa-sha256, an Ed25519 key for ed25519-sha256.
func LoadKey(domain, selector string, alg Algorithm, file string) (*Key, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	signer, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := checkKey(signer, alg); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &Key{Domain: strings.ToLower(strings.TrimSuffix(domain, ".")), Selector: selector, Algorithm: alg, Signer: signer, File: file}, nil
}

// ParsePrivateKey decodes the first PEM block of data as a PKCS #8 private
// key, or a PKCS #1 RSA private key.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found (want a PKCS #8 \"PRIVATE KEY\" or an \"RSA PRIVATE KEY\")")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing RSA private key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing PKCS #8 private key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
}

// checkKey checks that signer is a key alg can sign with.
func checkKey(signer crypto.Signer, alg Algorithm) error {
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		if alg != RSASHA256 {
			return fmt.Errorf("an RSA key cannot sign %s (want algorithm = %q)", alg, RSASHA256)
		}
		if bits := pub.N.BitLen(); bits < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is too weak: want at least %d (RFC 8301 §3.2)", bits, MinRSABits)
		}
	case ed25519.PublicKey:
		if alg != Ed25519SHA256 {
			return fmt.Errorf("an Ed25519 key cannot sign %s (want algorithm = %q)", alg, Ed25519SHA256)
		}
	default:
		return fmt.Errorf("unsupported key type %T (want RSA or Ed25519)", pub)
	}
	return nil
}

// GenerateKey makes a new private key for alg (RSA keys have MinRSABits
// bits) and returns it PEM-encoded as PKCS #8.
func GenerateKey(alg Algorithm) ([]byte, crypto.Signer, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case RSASHA256:
		signer, err = rsa.GenerateKey(rand.Reader, MinRSABits)
	case Ed25519SHA256:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("unknown algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), signer, nil
}

// KeyRecord returns the TXT record value that publishes signer's public
// key (RFC 6376 §3.6.1), e.g. "v=DKIM1; k=ed25519; p=...". RSA keys are
// published as SubjectPublicKeyInfo; Ed25519 keys as the bare 32 octets
// (RFC 8463 §4.2).
func KeyRecord(signer crypto.Signer) (string, error) {
	var k string
	var p []byte
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", fmt.Errorf("encoding public key: %w", err)
		}
		k, p = "rsa", der
	case ed25519.PublicKey:
		k, p = "ed25519", pub
	default:
		return "", fmt.Errorf("unsupported key type %T", pub)
	}
	return "v=DKIM1; k=" + k + "; p=" + base64.StdEncoding.EncodeToString(p), nil
}

// ZoneLine returns the key record as a zone-file line for name, the value
// split into quoted strings of at most 255 octets (RFC 6376 §3.6.2.2; a
// TXT character-string holds at most 255).
func ZoneLine(name, record string) string {
	var parts []string
	for len(record) > 255 {
		parts = append(parts, `"`+record[:255]+`"`)
		record = record[255:]
	}
	parts = append(parts, `"`+record+`"`)
	return name + ". IN TXT ( " + strings.Join(parts, " ") + " )"
}

// CheckNames checks that domain and selector can form a key record name
// (RFC 6376 §3.1: a selector is dot-separated sub-domain labels).
func CheckNames(domain, selector string) error {
	check := func(what, s string, minLabels int) error {
		labels := strings.Split(strings.TrimSuffix(s, "."), ".")
		if len(labels) < minLabels {
			return fmt.Errorf("%s %q: want at least %d labels", what, s, minLabels)
		}
		for _, l := range labels {
			if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
				return fmt.Errorf("%s %q: %q is not a DNS label", what, s, l)
			}
			for _, c := range l {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
					return fmt.Errorf("%s %q: %q is not a DNS label", what, s, l)
				}
			}
		}
		return nil
	}
	if err := check("domain", domain, 2); err != nil {
		return err
	}
	return check("selector", selector, 1)
}
