package deliver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/arc"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// KeySigner is the Signer backed by internal/dkim and internal/arc. It
// DKIM-signs with the route's key (Policy.DKIMKey) or the key of the From
// domain, and, on routes whose DKIMSigned action is route.ARC, adds an ARC
// set when a conversion changed a DKIM-signed message.
type KeySigner struct {
	// Keys holds the keyring in force (replaced on SIGHUP).
	Keys *dkim.Keys
	// AuthServID is the authserv-id of the ARC-Authentication-Results.
	AuthServID string
	// ARCKey names the sealing key; empty: the route's DKIMKey.
	ARCKey string
	// Now is the clock for ARC t=; nil: time.Now.
	Now func() time.Time
}

// Decision is what will happen to a message's signatures on one transfer.
type Decision struct {
	// Key signs the message; nil: no DKIM signature is added.
	Key *dkim.Key
	// Skip says why Key does not sign although it applies (the message
	// already carries its valid signature), or "".
	Skip string
	// Seal is the ARC sealing key; nil: no ARC set.
	Seal *dkim.Key
	// SealSkip says why no ARC set is added although the route asks for
	// one, or "".
	SealSkip string
	// CV is the chain validation status the new ARC-Seal will carry.
	CV string
}

// Decide works out what happens to the signatures of a message with the
// given header fields on a transfer described by req. It is what Sign
// does, and what "ferry explain" and "ferry probe" report.
func (s *KeySigner) Decide(req SignRequest, fields []dkim.Field) (Decision, error) {
	var d Decision
	kr := s.Keys.Get()
	var err error
	if req.Policy.DKIMKey != "" {
		if d.Key, err = kr.Lookup(req.Policy.DKIMKey); err != nil {
			return d, err
		}
	} else {
		d.Key = kr.ForDomain(dkim.FromDomain(fields))
	}
	if d.Key != nil && !req.Converted {
		// A message Ferry signed at an earlier hop with this very key and
		// that reaches this hop unchanged keeps that signature: a second
		// one by the same key adds nothing. Only when the signature was
		// found broken at receipt is it made again.
		for _, name := range dkim.Signed(fields) {
			if name == d.Key.Name() && !brokenAtReceipt(req.Env, d.Key) {
				d.Skip = "already signed by " + d.Key.Name() + " and unchanged"
			}
		}
	}
	if req.Policy.DKIMSigned != route.ARC || !req.Signed || !req.Converted {
		return d, nil
	}
	ref := s.ARCKey
	if ref == "" {
		ref = req.Policy.DKIMKey
	}
	if ref == "" {
		d.SealSkip = "no sealing key (set [dkim] arc_key or the route's dkim_key)"
		return d, nil
	}
	if d.Seal, err = kr.Lookup(ref); err != nil {
		return d, err
	}
	ar := req.Env.AuthResults
	switch {
	case ar == nil:
		d.Seal, d.SealSkip = nil, "not verified at receipt, so there are no results to seal"
	case ar.ARC == arc.Pass:
		d.CV = arc.Pass
	case ar.ARC == arc.Fail:
		d.CV = arc.Fail
	default:
		d.CV = arc.None
	}
	return d, nil
}

// brokenAtReceipt reports whether the signature by key failed at receipt.
func brokenAtReceipt(env *smtp.Envelope, key *dkim.Key) bool {
	if env == nil || env.AuthResults == nil {
		return false
	}
	for _, r := range env.AuthResults.DKIM {
		if r.Domain == key.Domain && r.Selector == key.Selector && r.Result != "pass" {
			return true
		}
	}
	return false
}

// Sign signs the content per Decide: first the DKIM-Signature over the
// content, then the ARC set over both, so that the ARC-Message-Signature
// covers Ferry's own signature too.
func (s *KeySigner) Sign(req SignRequest, open func() io.Reader) (SignResult, error) {
	fields, _, err := dkim.ReadHeader(bufio.NewReader(open()))
	if err != nil {
		return SignResult{}, err
	}
	d, err := s.Decide(req, fields)
	if err != nil {
		return SignResult{}, err
	}
	var res SignResult
	var notes []string
	switch {
	case d.Key != nil && d.Skip == "":
		// Ferry's own earlier signature by this key (made at an earlier
		// hop, broken by this conversion) is replaced, not kept beside
		// the new one.
		if res.Remove = dkim.SignedBy(fields, d.Key.Name()); len(res.Remove) > 0 {
			orig := open
			open = func() io.Reader { return dkim.WithoutFields(orig(), res.Remove) }
		}
		sig, err := dkim.Sign(open(), d.Key)
		if err != nil {
			return SignResult{}, err
		}
		res.Fields = sig
		note := fmt.Sprintf("DKIM-signed d=%s s=%s (%s)", d.Key.Domain, d.Key.Selector, d.Key.Algorithm)
		if len(res.Remove) > 0 {
			note += fmt.Sprintf(", replacing %d earlier signature(s) by that key", len(res.Remove))
		}
		notes = append(notes, note)
	case d.Skip != "":
		notes = append(notes, "not DKIM-signed again: "+d.Skip)
	}
	switch {
	case d.Seal != nil:
		sealer := &arc.Sealer{Key: d.Seal, AuthServID: s.AuthServID, Now: s.Now}
		set, err := sealer.Seal(io.MultiReader(strings.NewReader(res.Fields), open()), req.Env.AuthResults.Header(), d.CV)
		switch {
		case errors.Is(err, arc.ErrChainFull):
			notes = append(notes, "no ARC set: the message already has 50")
		case err != nil:
			return SignResult{}, err
		default:
			res.Fields = set + res.Fields
			notes = append(notes, fmt.Sprintf("ARC set added by %s (cv=%s)", d.Seal.Name(), cvOf(set)))
		}
	case d.SealSkip != "":
		notes = append(notes, "no ARC set: "+d.SealSkip)
	}
	res.Summary = strings.Join(notes, "; ")
	return res, nil
}

// cvOf returns the cv= of an ARC set's seal.
func cvOf(set string) string {
	_, after, _ := strings.Cut(set, "cv=")
	cv, _, _ := strings.Cut(after, ";")
	return cv
}
