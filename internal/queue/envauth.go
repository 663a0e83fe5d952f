package queue

import (
	"encoding/binary"

	"github.com/ferrymta/ferry/internal/smtp"
)

// envExtAuth is the tag of the authentication results found at receipt
// (issue 14): DKIM signatures verified and the ARC chain status.
const envExtAuth = 1

// encodeAuthResults encodes a: the ARC status and highest instance, then
// the DKIM results, each as domain, selector, algorithm, result, reason.
func encodeAuthResults(a *smtp.AuthResults) []byte {
	var b []byte
	b = appendString(b, a.ARC)
	b = binary.AppendUvarint(b, uint64(a.ARCInstance))
	b = binary.AppendUvarint(b, uint64(len(a.DKIM)))
	for _, r := range a.DKIM {
		b = appendString(b, r.Domain)
		b = appendString(b, r.Selector)
		b = appendString(b, r.Algorithm)
		b = appendString(b, r.Result)
		b = appendString(b, r.Reason)
	}
	return b
}

// decodeAuthResults decodes what encodeAuthResults wrote; a malformed value
// is dropped (the results are advisory), not a corrupt record.
func decodeAuthResults(p []byte) *smtp.AuthResults {
	d := decoder{b: p}
	a := &smtp.AuthResults{ARC: d.str(), ARCInstance: int(d.uvarint())}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return nil
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		a.DKIM = append(a.DKIM, smtp.DKIMResult{Domain: d.str(), Selector: d.str(), Algorithm: d.str(), Result: d.str(), Reason: d.str()})
	}
	if d.err != nil {
		return nil
	}
	return a
}
