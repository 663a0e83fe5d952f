package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ferrymta/ferry/internal/arc"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// dkimFate says in a few words what a transfer with plan p (or the
// failure reply) does to DKIM signatures, without knowing the message:
// what "ferry probe" reports for its sample messages.
func dkimFate(p deliver.TransferPlan, r *smtp.Reply, pol route.Policy) string {
	switch {
	case r != nil:
		return "not sent, signatures do not matter"
	case !p.Convert:
		return "sent unchanged: DKIM signatures stay valid"
	}
	s := "converted: a DKIM signature made before Ferry no longer verifies (RFC 6376 §5.3); Ferry signs the converted message where it holds the From domain's key"
	switch pol.DKIMSigned {
	case route.ARC:
		s += ", and adds an ARC set with the results it verified at receipt"
	case route.Bounce:
		s = "a DKIM-signed message is bounced with 5.6.3 rather than converted (dkim_signed=bounce)"
	default:
		s += "; dkim_signed=arc would add an ARC set, dkim_signed=bounce refuse such mail"
	}
	return s
}

// signatureSentences say what happens to the message's DKIM signatures on
// this transfer: which it carries (verified now when [dkim] resolver is
// set), which the conversion breaks, whether Ferry signs and with which
// key, and whether it adds an ARC set.
func signatureSentences(ctx context.Context, cfg config.Config, ex *explanation, content []byte, env *smtp.Envelope, pol route.Policy) ([]string, error) {
	if ex.Reply != "" || ex.Error != "" {
		return nil, nil
	}
	fields, _, err := dkim.ReadHeader(bufio.NewReader(bytes.NewReader(content)))
	if err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	changed := ex.plan.Convert && (ex.Conversion == nil || ex.Conversion.Changed)
	var out []string
	names := dkim.Signed(fields)
	if cfg.DKIM.Resolver != "" {
		env.AuthResults, _, _ = authenticate(ctx, dkim.NewNetResolver(cfg.DKIM.Resolver), func() io.Reader { return bytes.NewReader(content) })
		for _, r := range env.AuthResults.DKIM {
			s := fmt.Sprintf("the DKIM signature by d=%s s=%s %s now", r.Domain, r.Selector, verb(r.Result))
			if r.Reason != "" {
				s += " (" + r.Reason + ")"
			}
			out = append(out, s)
		}
		if env.AuthResults.ARC != arc.None {
			out = append(out, "its ARC chain ("+fmt.Sprint(env.AuthResults.ARCInstance)+" sets) validates as "+env.AuthResults.ARC)
		}
	} else if len(names) > 0 {
		what := "a DKIM signature"
		if len(names) > 1 {
			what = "DKIM signatures"
		}
		out = append(out, "it carries "+what+" by "+strings.Join(names, ", ")+" (not checked: no [dkim] resolver)")
	}
	switch {
	case len(names) > 0 && changed:
		which := "that signature"
		if len(names) > 1 {
			which = "those signatures"
		}
		out = append(out, "the conversion changes the signed content, so "+which+" will no longer verify at the next hop (RFC 6376 §5.3)")
	case len(names) > 0:
		out = append(out, "the message goes unchanged, so its signatures still verify at the next hop")
	}
	keyring, err := loadKeyring(cfg)
	if err != nil {
		return out, err
	}
	signer := dkimSigner(cfg, dkim.NewKeys(keyring))
	if signer == nil {
		return append(out, "Ferry adds no signature: no [[dkim.key]] is configured"), nil
	}
	d, err := signer.(*deliver.KeySigner).Decide(deliver.SignRequest{Env: env, Policy: pol, Signed: len(names) > 0, Converted: changed}, fields)
	if err != nil {
		return out, err
	}
	switch {
	case d.Skip != "":
		out = append(out, "Ferry does not sign again: "+d.Skip)
	case d.Key != nil:
		when := "over the message as sent"
		if changed {
			when = "after the conversion, over the octets sent"
		}
		out = append(out, fmt.Sprintf("Ferry signs %s with d=%s s=%s (%s), so its signature verifies at the next hop", when, d.Key.Domain, d.Key.Selector, d.Key.Algorithm))
	default:
		out = append(out, "Ferry adds no signature: it holds no key for the From domain "+dkim.FromDomain(fields))
	}
	switch {
	case d.Seal != nil:
		out = append(out, fmt.Sprintf("route policy is arc: Ferry adds an ARC set sealed by %s with cv=%s, carrying the results it found before converting", d.Seal.Name(), d.CV))
	case d.SealSkip != "":
		out = append(out, "route policy is arc, but Ferry adds no ARC set: "+d.SealSkip)
	}
	return out, nil
}

// verb is a DKIM result as a verb phrase.
func verb(result string) string {
	switch result {
	case "pass":
		return "verifies"
	case "fail":
		return "fails"
	}
	return "cannot be checked (" + result + ")"
}
