package arc

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/dkim"
)

// Sealer adds ARC sets signed with Key (an RSA key: rsa-sha256 is ARC's
// algorithm) in the name of AuthServID, the authserv-id of the results
// (RFC 8601 §2.5: the host name of the relay).
type Sealer struct {
	Key        *dkim.Key
	AuthServID string
	// Now is the clock for t=; nil: time.Now.
	Now func() time.Time
}

// ErrChainFull is returned when a message already carries MaxInstance ARC
// sets: no more can be added (RFC 8617 §4.2.1).
var ErrChainFull = errors.New("arc: the message already has 50 ARC sets")

// Seal reads the whole message from msg (the exact octets that will be
// sent) and returns the ARC set to prepend to it: ARC-Seal,
// ARC-Message-Signature and ARC-Authentication-Results, each ending in
// CRLF. results are the RFC 8601 resinfo clauses Ferry found before it
// changed the message, e.g. "dkim=pass header.d=example.org"; cv is the
// chain validation status found at receipt (None when the message had no
// ARC set; Pass or Fail otherwise). With cv Fail the seal covers only the
// new set (RFC 8617 §5.1.2).
func (s *Sealer) Seal(msg io.Reader, results, cv string) (string, error) {
	if s.Key == nil {
		return "", errors.New("arc: no sealing key")
	}
	priv, ok := s.Key.Signer.(*rsa.PrivateKey)
	if !ok {
		return "", fmt.Errorf("arc: key %s is not an RSA key (ARC seals with rsa-sha256)", s.Key.Name())
	}
	br := bufio.NewReaderSize(msg, 32<<10)
	fields, _, err := dkim.ReadHeader(br)
	if err != nil {
		return "", fmt.Errorf("arc: %w", err)
	}
	bh := sha256.New()
	if err := relaxedBody(bh, br); err != nil {
		return "", fmt.Errorf("arc: reading the body: %w", err)
	}
	prior, err := chain(fields)
	switch {
	case err != nil:
		// A malformed chain is a failed one: seal our own set only.
		cv, prior = Fail, nil
	case len(prior) >= MaxInstance:
		return "", ErrChainFull
	case len(prior) == 0:
		cv = None
	case cv != Pass:
		cv = Fail
	}
	inst := strconv.Itoa(len(prior) + 1)
	if cv == Fail {
		// RFC 8617 §5.1.2: the instance still counts on, but the seal
		// signs only the new set.
		prior = nil
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := strconv.FormatInt(now().Unix(), 10)
	d, sel := s.Key.Domain, s.Key.Selector

	aar := fieldAAR + ": i=" + inst + "; " + s.AuthServID
	if results != "" {
		aar += ";\r\n\t" + strings.ReplaceAll(results, "; ", ";\r\n\t")
	}
	aar += "\r\n"

	h := dkim.HeaderKeys(fields)
	for range countNamed(fields, "DKIM-Signature") {
		h = append(h, "DKIM-Signature")
	}
	ams := fieldAMS + ": i=" + inst + "; a=rsa-sha256; c=relaxed/relaxed; d=" + d + "; s=" + sel +
		"; t=" + t + ";\r\n\th=" + strings.Join(h, ":") + ";\r\n\tbh=" + base64.StdEncoding.EncodeToString(bh.Sum(nil)) + ";\r\n\tb="
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashOf(headerInput(fields, h, ams+"\r\n")))
	if err != nil {
		return "", fmt.Errorf("arc: signing the message signature: %w", err)
	}
	ams += fold(base64.StdEncoding.EncodeToString(sig)) + "\r\n"

	seal := fieldSeal + ": i=" + inst + "; a=rsa-sha256; t=" + t + "; cv=" + cv + ";\r\n\td=" + d + "; s=" + sel + ";\r\n\tb="
	sets := append(prior, set{aar: aar, ams: ams, seal: seal + "\r\n"})
	sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashOf(sealInput(sets)))
	if err != nil {
		return "", fmt.Errorf("arc: signing the seal: %w", err)
	}
	seal += fold(base64.StdEncoding.EncodeToString(sig)) + "\r\n"
	var out bytes.Buffer
	out.WriteString(seal)
	out.WriteString(ams)
	out.WriteString(aar)
	return out.String(), nil
}

// countNamed returns how many fields are named name.
func countNamed(fields []dkim.Field, name string) int {
	n := 0
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			n++
		}
	}
	return n
}
