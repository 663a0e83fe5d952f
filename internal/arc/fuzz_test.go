package arc

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// noKeys answers every key lookup with an error, so that fuzzing stays
// off the network and exercises parsing and chain structure.
type noKeys struct{}

func (noKeys) LookupTXT(context.Context, string) ([]string, error) {
	return nil, errors.New("no keys while fuzzing")
}

// FuzzValidate feeds arbitrary messages to Validate: it must never panic,
// and a message whose ARC fields are malformed must fail, never pass.
func FuzzValidate(f *testing.F) {
	f.Add("From: a@example.org\r\n\r\nbody\r\n")
	f.Add("ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; s=s; b=AAAA\r\n" +
		"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s; h=From; bh=x; b=AAAA\r\n" +
		"ARC-Authentication-Results: i=1; relay.example; dkim=pass\r\nFrom: a@example.org\r\n\r\nbody\r\n")
	f.Add("ARC-Seal: i=2; cv=pass\r\nARC-Seal: i=1\r\n\r\n")
	f.Add("ARC-Seal: i=99999999999999999999\r\n\r\n")
	f.Add("ARC-Message-Signature:\r\n\tb=\r\n\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		r, err := Validate(context.Background(), strings.NewReader(msg), noKeys{})
		if err != nil {
			return
		}
		if r.Status == Pass {
			t.Fatalf("a chain passed without any key: %+v", r)
		}
		_ = stripB(msg)
		_ = relaxedHeader(msg)
	})
}
