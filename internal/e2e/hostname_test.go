package e2e

import (
	"testing"
)

// TestShortHostnameWarned: a host name without a dot is warned about at
// start; a fully qualified one is not.
func TestShortHostnameWarned(t *testing.T) {
	t.Parallel()
	short := startRelayFlags(t, "", "", "--hostname", "relaybox")
	short.WaitLog(t, "level=WARN", `hostname \"relaybox\" is not a fully qualified domain name`)
	full := startRelay(t, "", "")
	full.WaitLog(t, "ferry started", "hostname="+relayHostname)
	if ls := full.LogLines("not a fully qualified"); len(ls) > 0 {
		t.Errorf("warned about %s: %v", relayHostname, ls)
	}
}
