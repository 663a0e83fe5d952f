package dkim

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Keyring is a set of signing keys, looked up by the From domain or by a
// route's key reference. It is immutable once built; Keys holds the one in
// force and swaps it on reload.
type Keyring struct {
	keys   []*Key
	byName map[string]*Key   // "selector._domainkey.domain"
	byDom  map[string][]*Key // domain → its keys, in configuration order
}

// NewKeyring returns a keyring of keys; two keys with the same domain and
// selector are an error.
func NewKeyring(keys ...*Key) (*Keyring, error) {
	kr := &Keyring{byName: map[string]*Key{}, byDom: map[string][]*Key{}}
	for _, k := range keys {
		if _, dup := kr.byName[k.Name()]; dup {
			return nil, fmt.Errorf("dkim: two keys for %s", k.Name())
		}
		kr.keys = append(kr.keys, k)
		kr.byName[k.Name()] = k
		kr.byDom[k.Domain] = append(kr.byDom[k.Domain], k)
	}
	return kr, nil
}

// Len returns the number of keys.
func (kr *Keyring) Len() int {
	if kr == nil {
		return 0
	}
	return len(kr.keys)
}

// Keys returns the keys in configuration order.
func (kr *Keyring) Keys() []*Key {
	if kr == nil {
		return nil
	}
	return kr.keys
}

// ForDomain returns the key that signs mail whose From field is in domain:
// the first key of that domain, else of its nearest parent domain that has
// one (a parent-domain signature is aligned for DMARC in relaxed mode, RFC
// 7489 §3.1.1); nil when none.
func (kr *Keyring) ForDomain(domain string) *Key {
	if kr == nil {
		return nil
	}
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	for d != "" {
		if ks := kr.byDom[d]; len(ks) > 0 {
			return ks[0]
		}
		_, rest, ok := strings.Cut(d, ".")
		if !ok || !strings.Contains(rest, ".") {
			break // never a bare top-level domain
		}
		d = rest
	}
	return nil
}

// Lookup returns the key a reference names: "selector._domainkey.domain",
// or a bare domain with the first key of that domain.
func (kr *Keyring) Lookup(ref string) (*Key, error) {
	r := strings.ToLower(strings.TrimSuffix(ref, "."))
	if kr != nil {
		if k := kr.byName[r]; k != nil {
			return k, nil
		}
		if ks := kr.byDom[r]; len(ks) > 0 {
			return ks[0], nil
		}
	}
	return nil, fmt.Errorf("dkim: no [[dkim.key]] for %q (want a domain or selector._domainkey.domain of a configured key)", ref)
}

// Keys holds the keyring in force: loaded at start, replaced on SIGHUP,
// read by every delivery.
type Keys struct {
	p atomic.Pointer[Keyring]
}

// NewKeys returns a holder with kr in force.
func NewKeys(kr *Keyring) *Keys {
	k := &Keys{}
	k.Set(kr)
	return k
}

// Set puts kr in force; messages signed from now on use it.
func (k *Keys) Set(kr *Keyring) {
	if kr == nil {
		kr = &Keyring{}
	}
	k.p.Store(kr)
}

// Get returns the keyring in force.
func (k *Keys) Get() *Keyring { return k.p.Load() }
