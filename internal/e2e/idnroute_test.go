package e2e

import (
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestUnicodeDomainFormsTakeTheirRoute: a route written for bücher.example
// carries mail for every spelling of that name (A-label in capitals, the
// ideographic full stop, full-width letters), never the "*" route: routing
// uses the same normalised form as the relay check. (A trailing dot is not
// valid in an SMTP path, RFC 5321 §4.1.2, and is refused with 501; the
// route written with one is the test in internal/route.)
func TestUnicodeDomainFormsTakeTheirRoute(t *testing.T) {
	t.Parallel()
	own := startSink(t, "127.0.0.1:0")
	other := startSink(t, "127.0.0.1:0")
	r := startRelay(t, shortRetry, "", routeTo("bücher.example", own.Addr), routeTo("*", other.Addr))
	content := testrelay.ReadTestdata(t, "simple-utf8-french.eml")
	forms := []string{"a@XN--BCHER-KVA.EXAMPLE", "b@bücher。example", "c@ｂüｃｈｅｒ.example"}
	for _, rcpt := range forms {
		sendUTF8(t, r.Addr, rcpt, content)
	}
	own.waitCaptures(t, len(forms))
	if n := other.count(t); n != 0 {
		t.Errorf("the \"*\" route's hop got %d messages for bücher.example, want 0", n)
	}
}
