package tlspolicy

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestVerifyDANE covers every selector and matching type for DANE-EE and
// DANE-TA, and the records SMTP must not use (RFC 7672 §3.1.3, RFC 7671).
func TestVerifyDANE(t *testing.T) {
	ca := testrelay.NewTestCA(t, "CA")
	now := time.Now()
	leaf := ca.Issue(t, "mx.test", now.Add(-time.Hour), now.Add(time.Hour), "mx.test")
	chain := []*x509.Certificate{leaf.Leaf, ca.Cert}
	data := func(sel, mt uint8, c *x509.Certificate) []byte {
		content := c.Raw
		if sel == SelectorSPKI {
			content = c.RawSubjectPublicKeyInfo
		}
		switch mt {
		case MatchSHA256:
			s := sha256.Sum256(content)
			return s[:]
		case MatchSHA512:
			s := sha512.Sum512(content)
			return s[:]
		}
		return content
	}
	for _, usage := range []uint8{UsageDANEEE, UsageDANETA} {
		target := leaf.Leaf
		if usage == UsageDANETA {
			target = ca.Cert
		}
		for sel := uint8(0); sel <= 1; sel++ {
			for mt := uint8(0); mt <= 2; mt++ {
				r := TLSA{Usage: usage, Selector: sel, MatchingType: mt, Data: data(sel, mt, target), Owner: "_25._tcp.mx.test."}
				if err := VerifyDANE(chain, []TLSA{r}, []string{"mx.test"}, now); err != nil {
					t.Errorf("%s: %v", r, err)
				}
				if usage == UsageDANETA {
					if err := VerifyDANE(chain, []TLSA{r}, []string{"other.test"}, now); err == nil {
						t.Errorf("%s matched for the wrong name", r)
					}
				}
			}
		}
	}
	unusable := []TLSA{
		{Usage: UsagePKIXEE, Selector: 1, MatchingType: 1, Data: data(1, 1, leaf.Leaf)},
		{Usage: UsagePKIXTA, Selector: 0, MatchingType: 1, Data: data(0, 1, ca.Cert)},
		{Usage: UsageDANEEE, Selector: 1, MatchingType: 1, Data: data(1, 1, leaf.Leaf)[:31]}, // wrong length
		{Usage: UsageDANEEE, Selector: 2, MatchingType: 1, Data: data(1, 1, leaf.Leaf)},
		{Usage: UsageDANEEE, Selector: 1, MatchingType: 3, Data: data(1, 1, leaf.Leaf)},
	}
	for _, r := range unusable {
		if r.usable() {
			t.Errorf("%s counts as usable", r)
		}
		if err := VerifyDANE(chain, []TLSA{r}, []string{"mx.test"}, now); err == nil || !strings.Contains(err.Error(), "no TLSA record matches") {
			t.Errorf("%s: %v", r, err)
		}
	}
	// DANE-EE ignores names and dates (RFC 7672 §3.1.1).
	expired := ca.Issue(t, "elsewhere", now.Add(-48*time.Hour), now.Add(-24*time.Hour), "elsewhere.test")
	ee := TLSA{Usage: UsageDANEEE, Selector: 1, MatchingType: 1, Data: data(1, 1, expired.Leaf)}
	if err := VerifyDANE([]*x509.Certificate{expired.Leaf}, []TLSA{ee}, []string{"mx.test"}, now); err != nil {
		t.Errorf("expired DANE-EE: %v", err)
	}
	if err := VerifyDANE(nil, []TLSA{ee}, nil, now); err == nil {
		t.Error("no certificate matched")
	}
}
