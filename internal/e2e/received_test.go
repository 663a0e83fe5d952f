package e2e

import (
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// checkReceived checks that data starts with Ferry's Received: field for
// queue ID id and returns the rest, which should be the original message.
func checkReceived(t *testing.T, data []byte, id string) []byte {
	t.Helper()
	field, rest := testrelay.StripFirstField(data)
	f := string(field)
	if !strings.HasPrefix(f, "Received:") {
		t.Errorf("first field is not Received: %q", testrelay.Clip(field))
		return data
	}
	// RFC 5321 §4.4: from the client's EHLO name and address, by this
	// host, with the protocol (RFC 3848), id, then "; date-time".
	if !strings.HasPrefix(f, "Received: from "+testrelay.ClientEHLO+" ([127.0.0.1])") {
		t.Errorf("Received field %q does not start with the client's EHLO name and address", f)
	}
	if !strings.Contains(f, "by "+relayHostname+" ") || !strings.Contains(f, " id "+id) {
		t.Errorf("Received field %q does not name %q and id %s", f, relayHostname, id)
	}
	if !strings.Contains(f, " with ESMTP id ") && !strings.Contains(f, " with UTF8SMTP id ") {
		t.Errorf("Received field %q: want protocol ESMTP, or UTF8SMTP for SMTPUTF8 mail (RFC 3848, RFC 6531 §3.7.3)", f)
	}
	if i := strings.LastIndexByte(f, ';'); i < 0 {
		t.Errorf("Received field %q has no date", f)
	} else if d, err := mail.ParseDate(strings.TrimSpace(f[i+1:])); err != nil {
		t.Errorf("Received field date: %v", err)
	} else if age := time.Since(d); age < -time.Minute || age > 10*time.Minute {
		t.Errorf("Received field date %v is %v from now", d, age)
	}
	return rest
}
