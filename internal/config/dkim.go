package config

import (
	"fmt"
	"strings"

	"github.com/ferrymta/ferry/internal/dkim"
)

// DKIM configures DKIM signing at delivery, verification at receipt and
// ARC sealing (docs/dkim.md).
type DKIM struct {
	// Resolver is the "host:port" of the DNS server asked for public keys
	// when verifying signatures at receipt; empty: no verification.
	Resolver string
	// AuthServID is the authserv-id in the ARC-Authentication-Results Ferry
	// writes (RFC 8601 §2.5); empty means Hostname.
	AuthServID string
	// ARCKey names the key ARC sets are sealed with (a key's domain, or
	// selector._domainkey.domain); empty: the route's dkim_key.
	ARCKey string
	// Keys are the signing keys, [[dkim.key]].
	Keys []DKIMKey
}

// DKIMKey is one [[dkim.key]]: a private key and where its public key is
// published.
type DKIMKey struct {
	// Domain is the signing domain (d=), lower case.
	Domain string
	// Selector is the s= value.
	Selector string
	// KeyFile is the PEM private key file.
	KeyFile string
	// Algorithm is "rsa-sha256" or "ed25519-sha256".
	Algorithm string
}

// Name returns the key's DNS name, "selector._domainkey.domain".
func (k DKIMKey) Name() string { return k.Selector + "._domainkey." + k.Domain }

// Route key policy value beyond PolicyConvert and PolicyBounce: convert a
// DKIM-signed message and add an ARC set (RFC 8617).
const PolicyARC = "arc"

func checkSelector(s string) (string, error) {
	for _, label := range strings.Split(s, ".") {
		if err := checkDomain(label + ".x"); err != nil {
			return "", fmt.Errorf("not a DNS label sequence")
		}
	}
	return s, nil
}

// dkim decodes [dkim] and its [[dkim.key]] tables. Every key file is read
// and checked here, so that a missing, unreadable or too weak key is an
// error at its key_file line.
func (d *decoder) dkim(v any, path string, c *DKIM) {
	d.table(v, path, map[string]field{
		"resolver":    d.strCheck(&c.Resolver, `an address like "127.0.0.1:53", or "" (no verification)`, true, checkListen),
		"authserv_id": d.strCheck(&c.AuthServID, wantHost, true, checkHost),
		"arc_key":     d.str(&c.ARCKey, "a key's domain or selector._domainkey.domain"),
		"key": func(v any, path string) {
			ts, ok := d.tables(v, path)
			if !ok {
				return
			}
			c.Keys = make([]DKIMKey, len(ts))
			for i, t := range ts {
				p := fmt.Sprintf("%s[%d]", path, i)
				k := &c.Keys[i]
				k.Algorithm = string(dkim.RSASHA256)
				errs := len(d.errs)
				for _, req := range []string{"domain", "selector", "key_file"} {
					if _, ok := t[req]; !ok {
						d.errf(p, "missing %s", req)
					}
				}
				d.table(t, p, map[string]field{
					"domain":    d.strCheck(&k.Domain, wantHost, false, checkHost),
					"selector":  d.strCheck(&k.Selector, `a selector like "s2026"`, false, checkSelector),
					"key_file":  d.str(&k.KeyFile, wantPath),
					"algorithm": d.enum(&k.Algorithm, string(dkim.RSASHA256), string(dkim.Ed25519SHA256)),
				})
				if len(d.errs) == errs {
					if _, err := dkim.LoadKey(k.Domain, k.Selector, dkim.Algorithm(k.Algorithm), k.KeyFile); err != nil {
						d.errf(p+".key_file", "want a readable %s private key, got %q: %v", k.Algorithm, k.KeyFile, err)
					}
				}
			}
		},
	})
}

// dkimChecks validates the rules between [dkim] and the routes: two keys
// with one name, a dkim_key or arc_key that names no key, and ARC routes
// without an RSA sealing key or without verification at receipt.
func (d *decoder) dkimChecks(cfg *Config) {
	seen := map[string]int{}
	for i, k := range cfg.DKIM.Keys {
		if j, dup := seen[k.Name()]; dup {
			d.errf(fmt.Sprintf("dkim.key[%d].selector", i), "want one key per domain and selector, got %s again (first on line %d)", k.Name(), d.lines.lineOf(fmt.Sprintf("dkim.key[%d].selector", j)))
		}
		seen[k.Name()] = i
	}
	find := func(ref string) (DKIMKey, bool) {
		r := strings.ToLower(strings.TrimSuffix(ref, "."))
		for _, k := range cfg.DKIM.Keys {
			if k.Name() == r || k.Domain == r {
				return k, true
			}
		}
		return DKIMKey{}, false
	}
	if ref := cfg.DKIM.ARCKey; ref != "" {
		if k, ok := find(ref); !ok {
			d.errf("dkim.arc_key", "want the domain or selector._domainkey.domain of a [[dkim.key]], got %q", ref)
		} else if k.Algorithm != string(dkim.RSASHA256) {
			d.errf("dkim.arc_key", "want an rsa-sha256 key (ARC seals with rsa-sha256), got %s (%s)", k.Name(), k.Algorithm)
		}
	}
	for i, r := range cfg.Routes {
		p := fmt.Sprintf("route[%d]", i)
		var key DKIMKey
		if r.DKIMKey != "" {
			k, ok := find(r.DKIMKey)
			if !ok {
				d.errf(p+".dkim_key", "want the domain or selector._domainkey.domain of a [[dkim.key]], got %q", r.DKIMKey)
				continue
			}
			key = k
		}
		if r.DKIMSigned != PolicyARC {
			continue
		}
		if cfg.DKIM.ARCKey != "" {
			key, _ = find(cfg.DKIM.ARCKey)
		}
		switch {
		case key.Domain == "":
			d.errf(p+".dkim_signed", `want a sealing key for "arc": set [dkim] arc_key, or dkim_key here`)
		case key.Algorithm != string(dkim.RSASHA256):
			d.errf(p+".dkim_signed", `want an rsa-sha256 sealing key for "arc" (ARC seals with rsa-sha256), got %s (%s)`, key.Name(), key.Algorithm)
		case cfg.DKIM.Resolver == "":
			d.errf(p+".dkim_signed", `want [dkim] resolver set for "arc": the ARC set reports the verification at receipt`)
		}
	}
}

// dkim writes [dkim] and its keys.
func (t *tomlWriter) dkim(c DKIM) {
	t.header("[dkim]")
	t.str("resolver", c.Resolver)
	t.str("authserv_id", c.AuthServID)
	t.str("arc_key", c.ARCKey)
	for _, k := range c.Keys {
		t.header("[[dkim.key]]")
		t.str("domain", k.Domain)
		t.str("selector", k.Selector)
		t.str("key_file", k.KeyFile)
		t.str("algorithm", k.Algorithm)
	}
}
