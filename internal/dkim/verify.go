package dkim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/ferrymta/ferry/internal/smtp"
)

// MaxSignatures bounds the signatures verified per message; later ones
// are reported as not checked (permerror), so that a message cannot make
// Ferry do unbounded work.
const MaxSignatures = 8

// Verify checks every DKIM-Signature field of the message read from msg
// (RFC 6376 §6) and returns one result per field, top first. Public keys
// come from res. The error is for a message that could not be read at all;
// a signature that does not verify is a result, not an error.
func Verify(ctx context.Context, msg io.Reader, res TXTResolver) ([]smtp.DKIMResult, error) {
	br := bufio.NewReaderSize(msg, 32<<10)
	fields, head, err := ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	var out []smtp.DKIMResult
	for _, f := range fields {
		if strings.EqualFold(f.Name, "DKIM-Signature") {
			t := Tags(f.Value())
			out = append(out, smtp.DKIMResult{Domain: strings.ToLower(t["d"]), Selector: t["s"], Algorithm: t["a"]})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	vs, err := msgdkim.VerifyWithOptions(io.MultiReader(bytes.NewReader(head), br), &msgdkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return res.LookupTXT(ctx, name) },
		MaxVerifications: MaxSignatures,
	})
	if err != nil && err != msgdkim.ErrTooManySignatures {
		return nil, fmt.Errorf("dkim: verifying: %w", err)
	}
	for i := range out {
		if i >= len(vs) {
			out[i].Result, out[i].Reason = "permerror", fmt.Sprintf("not checked: more than %d signatures", MaxSignatures)
			continue
		}
		out[i].Result, out[i].Reason = Outcome(vs[i].Err)
	}
	return out, nil
}

// Outcome maps a go-msgauth verification error to an RFC 8601 result and
// a reason.
func Outcome(err error) (result, reason string) {
	switch {
	case err == nil:
		return "pass", ""
	case msgdkim.IsTempFail(err):
		return "temperror", err.Error()
	case msgdkim.IsPermFail(err):
		return "permerror", err.Error()
	}
	return "fail", err.Error()
}
