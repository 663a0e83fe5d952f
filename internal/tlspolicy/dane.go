package tlspolicy

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TLSA certificate usages, selectors and matching types (RFC 6698 §2.1,
// RFC 7218 acronyms).
const (
	UsagePKIXTA  = 0 // unusable for SMTP (RFC 7672 §3.1.3)
	UsagePKIXEE  = 1 // unusable for SMTP (RFC 7672 §3.1.3)
	UsageDANETA  = 2
	UsageDANEEE  = 3
	SelectorCert = 0
	SelectorSPKI = 1
	MatchFull    = 0
	MatchSHA256  = 1
	MatchSHA512  = 2
)

// TLSA is one TLSA record (RFC 6698 §2) with its association data decoded.
type TLSA struct {
	// Usage, Selector and MatchingType are the record's parameters.
	Usage, Selector, MatchingType uint8
	// Data is the certificate association data.
	Data []byte
	// Owner is the record's owner name, e.g. "_25._tcp.mx.example.".
	Owner string
}

// String formats the record as its presentation form, e.g.
// "_25._tcp.mx.example. TLSA 3 1 1 4f5e…", with long data shortened.
func (r TLSA) String() string {
	h := hex.EncodeToString(r.Data)
	if len(h) > 16 {
		h = h[:16] + "…"
	}
	return fmt.Sprintf("%s TLSA %d %d %d %s", r.Owner, r.Usage, r.Selector, r.MatchingType, h)
}

// Presentation returns the record's data in presentation form, e.g.
// "3 1 1 4f5e...", in full.
func (r TLSA) Presentation() string {
	return fmt.Sprintf("%d %d %d %s", r.Usage, r.Selector, r.MatchingType, hex.EncodeToString(r.Data))
}

// usable reports whether SMTP may use the record: DANE-TA(2) or DANE-EE(3)
// (RFC 7672 §3.1.3), a known selector and matching type, and data of the
// digest's length (RFC 7671 §4).
func (r TLSA) usable() bool {
	if r.Usage != UsageDANETA && r.Usage != UsageDANEEE {
		return false
	}
	if r.Selector != SelectorCert && r.Selector != SelectorSPKI {
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return len(r.Data) > 0
	case MatchSHA256:
		return len(r.Data) == sha256.Size
	case MatchSHA512:
		return len(r.Data) == sha512.Size
	}
	return false
}

// tlsaOf converts miekg/dns records.
func tlsaOf(rrs []dns.RR) []TLSA {
	var out []TLSA
	for _, rr := range rrs {
		t, ok := rr.(*dns.TLSA)
		if !ok {
			continue
		}
		data, err := hex.DecodeString(t.Certificate)
		if err != nil {
			data = nil // unusable
		}
		out = append(out, TLSA{Usage: t.Usage, Selector: t.Selector, MatchingType: t.MatchingType, Data: data, Owner: t.Hdr.Name})
	}
	return out
}

// matches reports whether cert matches the record's selector and matching
// type (RFC 6698 §2.1.2, §2.1.3).
func (r TLSA) matches(cert *x509.Certificate) bool {
	var content []byte
	switch r.Selector {
	case SelectorCert:
		content = cert.Raw
	case SelectorSPKI:
		content = cert.RawSubjectPublicKeyInfo
	default:
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return bytes.Equal(content, r.Data)
	case MatchSHA256:
		sum := sha256.Sum256(content)
		return bytes.Equal(sum[:], r.Data)
	case MatchSHA512:
		sum := sha512.Sum512(content)
		return bytes.Equal(sum[:], r.Data)
	}
	return false
}

// VerifyDANE checks a server's certificate chain against usable TLSA
// records (RFC 7672 §3.1, RFC 7671 §5). A DANE-EE(3) match authenticates
// the server by its key alone: names and validity dates are not checked
// (RFC 7672 §3.1.1). A DANE-TA(2) match needs a chain from the leaf to the
// matching certificate that is valid now and names one of refNames (RFC
// 7672 §3.1.2, §3.2.2: the TLSA base domain, i.e. the MX host name, or the
// next-hop domain). The error names the records that did not match.
func VerifyDANE(chain []*x509.Certificate, records []TLSA, refNames []string, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("DANE: server sent no certificate")
	}
	leaf := chain[0]
	var taErrs []string
	for _, r := range records {
		if !r.usable() {
			continue
		}
		switch r.Usage {
		case UsageDANEEE:
			if r.matches(leaf) {
				return nil
			}
		case UsageDANETA:
			for i, c := range chain {
				if !r.matches(c) {
					continue
				}
				err := verifyToTA(chain, i, refNames, now)
				if err == nil {
					return nil
				}
				taErrs = append(taErrs, r.String()+": "+err.Error())
			}
		}
	}
	var names []string
	for _, r := range records {
		if r.usable() {
			names = append(names, r.String())
		}
	}
	if len(taErrs) > 0 {
		return fmt.Errorf("DANE: certificate chain matches %s", strings.Join(taErrs, "; "))
	}
	return fmt.Errorf("DANE: no TLSA record matches the certificate of %s (records: %s)", leafName(leaf), strings.Join(names, ", "))
}

// verifyToTA builds a chain from chain[0] to the trust anchor chain[ta]
// and checks it with the reference names (RFC 7672 §3.2.2). The trust
// anchor's own dates are not checked (RFC 7671 §5.2.2 treats it as a
// trust anchor, not a certificate to validate).
func verifyToTA(chain []*x509.Certificate, ta int, refNames []string, now time.Time) error {
	anchor := chain[ta]
	if ta == 0 {
		// The leaf is itself the trust anchor: only the name matters.
		return checkNames(anchor, refNames)
	}
	roots := x509.NewCertPool()
	// A copy without the anchor's validity: x509 checks every chain
	// element's dates, an anchor's dates do not matter to DANE.
	roots.AddCert(anchor)
	inter := x509.NewCertPool()
	for _, c := range chain[1:ta] {
		inter.AddCert(c)
	}
	var lastErr error
	for _, name := range refNames {
		_, err := chain[0].Verify(x509.VerifyOptions{
			DNSName:       strings.TrimSuffix(name, "."),
			Roots:         roots,
			Intermediates: inter,
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err == nil {
			return nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = errors.New("no reference name")
	}
	return lastErr
}

// checkNames checks that cert names one of refNames.
func checkNames(cert *x509.Certificate, refNames []string) error {
	var lastErr error
	for _, name := range refNames {
		if lastErr = cert.VerifyHostname(strings.TrimSuffix(name, ".")); lastErr == nil {
			return nil
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no reference name")
	}
	return lastErr
}

// leafName names a certificate for messages: its first DNS name, else its
// subject.
func leafName(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

// peerChain returns the certificates the server sent, leaf first.
func peerChain(cs tls.ConnectionState) []*x509.Certificate { return cs.PeerCertificates }
