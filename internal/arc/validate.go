package arc

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/ferrymta/ferry/internal/dkim"
)

// Result is the outcome of validating a message's ARC chain.
type Result struct {
	// Status is None, Pass or Fail (RFC 8617 §4.4).
	Status string
	// Instance is the highest ARC set instance; 0 when none.
	Instance int
	// Reason says why the chain failed.
	Reason string
}

// Validate checks the ARC chain of the message read from msg (RFC 8617
// §5.2): every set complete and numbered 1..N, the newest
// ARC-Message-Signature valid over the message, every ARC-Seal valid with
// the cv= it must have. Keys come from res. The error is for a message
// that could not be read; a broken chain is a Fail result.
func Validate(ctx context.Context, msg io.Reader, res dkim.TXTResolver) (Result, error) {
	br := bufio.NewReaderSize(msg, 32<<10)
	fields, _, err := dkim.ReadHeader(br)
	if err != nil {
		return Result{}, fmt.Errorf("arc: %w", err)
	}
	sets, err := chain(fields)
	if err != nil {
		_, _ = io.Copy(io.Discard, br)
		return Result{Status: Fail, Reason: err.Error()}, nil
	}
	if len(sets) == 0 {
		_, _ = io.Copy(io.Discard, br)
		return Result{Status: None}, nil
	}
	r := Result{Instance: len(sets)}
	fail := func(format string, args ...any) (Result, error) {
		r.Status, r.Reason = Fail, fmt.Sprintf(format, args...)
		return r, nil
	}
	// Step 3: the newest seal says fail: the chain has failed.
	newest := tagsOf(sets[len(sets)-1].seal)
	if newest["cv"] == Fail {
		_, _ = io.Copy(io.Discard, br)
		return fail("ARC-Seal i=%d has cv=fail", len(sets))
	}
	// Step 4: the newest AMS over the message as it is.
	ams := sets[len(sets)-1].ams
	at := tagsOf(ams)
	if at["a"] != "rsa-sha256" {
		_, _ = io.Copy(io.Discard, br)
		return fail("ARC-Message-Signature i=%d: algorithm %q", len(sets), at["a"])
	}
	if c := at["c"]; c != "" && c != "relaxed/relaxed" {
		_, _ = io.Copy(io.Discard, br)
		return fail("ARC-Message-Signature i=%d: canonicalization %q (want relaxed/relaxed)", len(sets), c)
	}
	bh := sha256.New()
	if err := relaxedBody(bh, br); err != nil {
		return Result{}, fmt.Errorf("arc: reading the body: %w", err)
	}
	if base64.StdEncoding.EncodeToString(bh.Sum(nil)) != at["bh"] {
		return fail("ARC-Message-Signature i=%d: body hash mismatch", len(sets))
	}
	h := strings.Split(at["h"], ":")
	for _, name := range h {
		if strings.EqualFold(strings.TrimSpace(name), fieldSeal) {
			return fail("ARC-Message-Signature i=%d signs ARC-Seal (RFC 8617 §4.1.2)", len(sets))
		}
	}
	if err := verifySig(ctx, res, at, headerInput(fields, h, ams)); err != nil {
		return fail("ARC-Message-Signature i=%d: %v", len(sets), err)
	}
	// Steps 5-6: every seal, newest first, with the right cv=.
	for i := len(sets); i >= 1; i-- {
		st := tagsOf(sets[i-1].seal)
		want := Pass
		if i == 1 {
			want = None
		}
		if st["cv"] != want {
			return fail("ARC-Seal i=%d has cv=%s, want %s", i, st["cv"], want)
		}
		if _, ok := st["h"]; ok {
			return fail("ARC-Seal i=%d has an h= tag", i)
		}
		if st["a"] != "rsa-sha256" {
			return fail("ARC-Seal i=%d: algorithm %q", i, st["a"])
		}
		if err := verifySig(ctx, res, st, sealInput(sets[:i])); err != nil {
			return fail("ARC-Seal i=%d: %v", i, err)
		}
	}
	r.Status = Pass
	return r, nil
}

// verifySig checks the b= of a signature with tags t over input, with the
// key published for t's d= and s=.
func verifySig(ctx context.Context, res dkim.TXTResolver, t map[string]string, input string) error {
	txts, err := res.LookupTXT(ctx, t["s"]+"._domainkey."+t["d"])
	if err != nil {
		return fmt.Errorf("key lookup: %w", err)
	}
	if len(txts) != 1 {
		return fmt.Errorf("want one key record at %s._domainkey.%s, got %d", t["s"], t["d"], len(txts))
	}
	pub, err := publicKey(txts[0])
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(t["b"])
	if err != nil {
		return fmt.Errorf("b=: %w", err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, hashOf(input), sig); err != nil {
		return fmt.Errorf("signature does not verify")
	}
	return nil
}

// tagsOf parses the tag list of a raw signature field.
func tagsOf(raw string) map[string]string { return dkim.Tags(dkim.Field{Raw: raw}.Value()) }
