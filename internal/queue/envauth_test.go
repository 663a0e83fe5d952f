package queue

import (
	"reflect"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/smtp"
)

// TestAuthResultsRoundTrip: the results at receipt survive the envelope
// (extension tag 1), and an envelope without them has none.
func TestAuthResultsRoundTrip(t *testing.T) {
	env := &smtp.Envelope{
		From:    smtp.Path{LocalPart: "a", Domain: "example.org"},
		Rcpts:   []smtp.Recipient{{Addr: smtp.Path{LocalPart: "b", Domain: "example.net"}}},
		Arrival: time.Unix(1764752400, 0),
		AuthResults: &smtp.AuthResults{ARC: "pass", ARCInstance: 2, DKIM: []smtp.DKIMResult{
			{Domain: "example.org", Selector: "s1", Algorithm: "rsa-sha256", Result: "pass"},
			{Domain: "example.com", Selector: "old", Algorithm: "ed25519-sha256", Result: "fail", Reason: "body hash did not verify"},
		}},
	}
	got, err := decodeEnvelope("0ABC", encodeEnvelope(nil, env))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.AuthResults, env.AuthResults) {
		t.Errorf("AuthResults = %+v, want %+v", got.AuthResults, env.AuthResults)
	}
	env.AuthResults = nil
	got, err = decodeEnvelope("0ABC", encodeEnvelope(nil, env))
	if err != nil || got.AuthResults != nil {
		t.Errorf("without results: %+v, %v", got.AuthResults, err)
	}
	if decodeAuthResults([]byte{0x05, 'a'}) != nil {
		t.Error("a truncated value decoded")
	}
}

// TestEnvelopeExtensionsTogether: every extension survives beside the
// others, and a tag this version does not know is skipped, not an error.
func TestEnvelopeExtensionsTogether(t *testing.T) {
	env := &smtp.Envelope{
		From:        smtp.Path{LocalPart: "a", Domain: "example.org"},
		Rcpts:       []smtp.Recipient{{Addr: smtp.Path{LocalPart: "b", Domain: "example.net"}}},
		TLSOptional: true,
		AuthResults: &smtp.AuthResults{ARC: "none", DKIM: []smtp.DKIMResult{
			{Domain: "example.org", Selector: "s1", Algorithm: "rsa-sha256", Result: "pass"},
		}},
		ContentScan: &downgrade.Needs{EightBit: true, HeaderEightBit: true, DKIMSigned: true},
	}
	e := encodeEnvelope(nil, env)
	got, err := decodeEnvelope("0ABC", e)
	if err != nil {
		t.Fatal(err)
	}
	if !got.TLSOptional || !reflect.DeepEqual(got.AuthResults, env.AuthResults) {
		t.Errorf("got TLSOptional=%v AuthResults=%+v", got.TLSOptional, got.AuthResults)
	}
	if got.ContentScan == nil || *got.ContentScan != *env.ContentScan {
		t.Errorf("got ContentScan=%+v, want %+v", got.ContentScan, env.ContentScan)
	}
	// Put fills in the content scan in place: it must stay the last
	// extension, whatever else the envelope carries.
	if slot := scanSlot(e, len(e)); slot != len(e)-2 {
		t.Errorf("content scan not the last extension (slot %d of %d)", slot, len(e))
	}
	// The trailer is last: its count is the octet after the recipients'
	// encoding. Rewrite it with one more, unknown, extension at the end.
	plain := *env
	plain.TLSOptional, plain.AuthResults, plain.ContentScan = false, nil, nil
	base := encodeEnvelope(nil, &plain)
	withUnknown := append(base[:len(base)-1:len(base)-1], 1, 99, 3, 'x', 'y', 'z')
	got, err = decodeEnvelope("0ABC", withUnknown)
	if err != nil {
		t.Fatalf("unknown tag: %v", err)
	}
	if got.From != env.From || len(got.Rcpts) != 1 {
		t.Errorf("unknown tag: envelope %+v", got)
	}
}
