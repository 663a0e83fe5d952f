package dkim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

// signedFields are the header fields signed when present: RFC 6376 §5.4.1's
// list, and the MIME fields that say how the body is to be read (which a
// later conversion would change: signing them makes that visible).
var signedFields = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc",
	"In-Reply-To", "References", "Message-ID",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// oversigned are listed once more than they occur in h=, so that a field of
// that name added later breaks the signature (RFC 6376 §8.15).
var oversigned = map[string]bool{"From": true, "Subject": true, "To": true, "Date": true}

// HeaderKeys returns the h= list for a message with these header fields:
// every field of signedFields present, as often as it occurs, and the
// oversigned ones one more time (so also when absent).
func HeaderKeys(fields []Field) []string {
	var keys []string
	for _, name := range signedFields {
		n := count(fields, name)
		if oversigned[name] {
			n++
		}
		for range n {
			keys = append(keys, name)
		}
	}
	return keys
}

// Sign reads the whole message from msg and returns the DKIM-Signature
// field (with its final CRLF) that key makes over it, relaxed/relaxed (RFC
// 6376 §3.4), to be prepended to exactly those octets.
func Sign(msg io.Reader, key *Key) (string, error) {
	br := bufio.NewReaderSize(msg, 32<<10)
	fields, head, err := ReadHeader(br)
	if err != nil {
		return "", fmt.Errorf("dkim: %w", err)
	}
	if count(fields, "From") == 0 {
		return "", fmt.Errorf("dkim: the message has no From field (RFC 6376 §5.4)")
	}
	s, err := msgdkim.NewSigner(&msgdkim.SignOptions{
		Domain:                 key.Domain,
		Selector:               key.Selector,
		Signer:                 key.Signer,
		HeaderCanonicalization: msgdkim.CanonicalizationRelaxed,
		BodyCanonicalization:   msgdkim.CanonicalizationRelaxed,
		HeaderKeys:             HeaderKeys(fields),
	})
	if err != nil {
		return "", fmt.Errorf("dkim: %w", err)
	}
	if _, err := io.Copy(s, io.MultiReader(bytes.NewReader(head), br)); err != nil {
		_ = s.Close()
		return "", fmt.Errorf("dkim: reading the message: %w", err)
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("dkim: signing with %s: %w", key.Name(), err)
	}
	return s.Signature(), nil
}

// Signed returns the d= and s= of every DKIM-Signature field in fields, top
// first, as "selector._domainkey.domain" names (lower case domain).
func Signed(fields []Field) []string {
	var out []string
	for _, f := range fields {
		if strings.EqualFold(f.Name, "DKIM-Signature") {
			t := Tags(f.Value())
			out = append(out, t["s"]+"._domainkey."+strings.ToLower(t["d"]))
		}
	}
	return out
}
