package arc

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrymta/ferry/internal/dkim"
)

// MaxInstance is the highest ARC set instance (RFC 8617 §4.2.1).
const MaxInstance = 50

// Chain validation status values (RFC 8617 §4.4).
const (
	None = "none"
	Pass = "pass"
	Fail = "fail"
)

// Field names of an ARC set.
const (
	fieldAAR  = "ARC-Authentication-Results"
	fieldAMS  = "ARC-Message-Signature"
	fieldSeal = "ARC-Seal"
)

// set is one ARC set of a message: its three fields, raw.
type set struct {
	aar, ams, seal string
}

// chain collects the ARC sets in fields by instance. It returns the sets
// (index 0 is instance 1) or an error when the chain is malformed: an
// instance without its three fields, a field twice for one instance, a gap,
// or an instance above MaxInstance (RFC 8617 §5.2 step 2).
func chain(fields []dkim.Field) ([]set, error) {
	byInst := map[int]*set{}
	max := 0
	for _, f := range fields {
		var slot func(*set) *string
		switch {
		case strings.EqualFold(f.Name, fieldAAR):
			slot = func(s *set) *string { return &s.aar }
		case strings.EqualFold(f.Name, fieldAMS):
			slot = func(s *set) *string { return &s.ams }
		case strings.EqualFold(f.Name, fieldSeal):
			slot = func(s *set) *string { return &s.seal }
		default:
			continue
		}
		i, err := instance(f.Value())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		s := byInst[i]
		if s == nil {
			s = &set{}
			byInst[i] = s
		}
		p := slot(s)
		if *p != "" {
			return nil, fmt.Errorf("two %s fields for instance %d", f.Name, i)
		}
		*p = f.Raw
		if i > max {
			max = i
		}
	}
	sets := make([]set, max)
	for i := 1; i <= max; i++ {
		s := byInst[i]
		if s == nil || s.aar == "" || s.ams == "" || s.seal == "" {
			return nil, fmt.Errorf("ARC set %d is incomplete", i)
		}
		sets[i-1] = *s
	}
	return sets, nil
}

// instance reads the i= tag that starts an ARC field's value (RFC 8617
// §4.2.1; in an ARC-Authentication-Results it must come first, and the
// results after it may hold tags of their own).
func instance(value string) (int, error) {
	first, _, _ := strings.Cut(value, ";")
	k, v, _ := strings.Cut(first, "=")
	v = strings.TrimSpace(v)
	i, err := strconv.Atoi(v)
	if strings.TrimSpace(k) != "i" || err != nil || i < 1 || i > MaxInstance {
		return 0, fmt.Errorf("want i=1 to i=%d first, got %q", MaxInstance, first)
	}
	return i, nil
}

// sealInput returns the octets an ARC-Seal of the last set in sets signs
// (RFC 8617 §5.1.1): every set's AAR, AMS and AS in increasing instance
// order, relaxed, the last AS with its b= value removed and no final CRLF.
func sealInput(sets []set) string {
	var b strings.Builder
	for i, s := range sets {
		b.WriteString(relaxedHeader(s.aar))
		b.WriteString(relaxedHeader(s.ams))
		if i == len(sets)-1 {
			b.WriteString(strings.TrimSuffix(relaxedHeader(stripB(s.seal)), "\r\n"))
		} else {
			b.WriteString(relaxedHeader(s.seal))
		}
	}
	return b.String()
}

// headerInput returns the octets an ARC-Message-Signature (or
// DKIM-Signature) with header list h signs: the fields named in h, each
// instance taken from the bottom up (RFC 6376 §5.4.2), relaxed, then the
// signature field itself with b= emptied and no final CRLF.
func headerInput(fields []dkim.Field, h []string, sig string) string {
	used := map[int]bool{}
	var b strings.Builder
	for _, name := range h {
		name = strings.TrimSpace(name)
		for i := len(fields) - 1; i >= 0; i-- {
			if !used[i] && strings.EqualFold(fields[i].Name, name) {
				used[i] = true
				b.WriteString(relaxedHeader(fields[i].Raw))
				break
			}
		}
	}
	b.WriteString(strings.TrimSuffix(relaxedHeader(stripB(sig)), "\r\n"))
	return b.String()
}

// publicKey parses a DKIM key record (RFC 6376 §3.6.1) into an RSA public
// key: ARC signs with rsa-sha256 only (RFC 8617 §4.1.3 refers to DKIM's
// algorithms; rsa-sha256 is the one every implementation takes).
func publicKey(record string) (*rsa.PublicKey, error) {
	t := dkim.Tags(record)
	if v, ok := t["v"]; ok && v != "DKIM1" {
		return nil, fmt.Errorf("key record version %q", v)
	}
	if k, ok := t["k"]; ok && k != "rsa" {
		return nil, fmt.Errorf("key type %q is not rsa", k)
	}
	p, ok := t["p"]
	if !ok || p == "" {
		return nil, errors.New("key record has no public key (revoked)")
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("key record p=: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		if pk, err2 := x509.ParsePKCS1PublicKey(der); err2 == nil {
			return pk, nil
		}
		return nil, fmt.Errorf("key record p=: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("key record holds a %T, not an RSA key", pub)
	}
	if rk.N.BitLen() < 1024 {
		return nil, fmt.Errorf("RSA key of %d bits is too short (RFC 8301 §3.2)", rk.N.BitLen())
	}
	return rk, nil
}

// hashOf returns the SHA-256 of s.
func hashOf(s string) []byte {
	h := crypto.SHA256.New()
	h.Write([]byte(s))
	return h.Sum(nil)
}

// fold writes a base64 value folded into lines of at most 72 octets, each
// continuation starting with a tab.
func fold(v string) string {
	var b strings.Builder
	for len(v) > 72 {
		b.WriteString(v[:72])
		b.WriteString("\r\n\t")
		v = v[72:]
	}
	b.WriteString(v)
	return b.String()
}
