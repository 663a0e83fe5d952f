package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestDANESmartHostBinary: routes with configured next hops and tls =
// "dane-only" or "dane" in the configuration file of "ferry serve": a next
// hop whose certificate matches its TLSA records gets the mail over
// authenticated TLS, one whose certificate does not is deferred with 4.7.5
// and never gets it; "ferry explain" names the policy; an IP-address next
// hop with tls = "dane" is a configuration error naming the line.
func TestDANESmartHostBinary(t *testing.T) {
	// Not parallel: the world (sinks, unbound, policy server) is heavy,
	// and timing-sensitive parallel tests (TestHostileClients) suffer.
	w := startTLSWorld(t)
	routes := fmt.Sprintf(`
[[route]]
domain = "smart-ee.example"
nexthop = "[mx-ee.sec.test]:%[1]s"
tls = "dane-only"

[[route]]
domain = "smart-bad.example"
nexthop = "[mx-bad.sec.test]:%[1]s"
tls = "dane"
`, w.port)
	conf := w.config + "tls_reports = false\n" + shortRetry + routes
	r := startRelay(t, conf, "")
	c := testrelay.Dial(t, r.Addr)
	msg := []byte("From: <tester@example.net>\r\nSubject: dane smart host\r\n\r\nhello\r\n")
	c.SendID(sender, []string{"a@smart-ee.example"}, "", msg)
	badID := c.SendID(sender, []string{"b@smart-bad.example"}, "", msg)
	c.Quit()

	w.hops["mx-ee"].waitCaptures(t, 1)
	r.WaitLog(t, "event=tls_policy", "nexthop=mx-ee.sec.test:"+w.port, "tls=dane-only", "policy=dane",
		"_"+w.port+"._tcp.mx-ee.sec.test.")
	r.WaitLog(t, "event=sent", "to=a@smart-ee.example", "tls_verified=true")
	r.WaitLog(t, badID, "status=deferred", "4.7.5", "_"+w.port+"._tcp.mx-bad.sec.test. TLSA 3 1 1")
	if n := w.hops["mx-bad"].count(t); n != 0 {
		t.Errorf("mx-bad got %d messages despite its TLSA mismatch", n)
	}

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "ferry.toml")
	mfile := filepath.Join(dir, "m.eml")
	if err := os.WriteFile(cfgFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mfile, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := ferry().Run(t, "explain", "--config", cfgFile, "--to", "x@smart-ee.example", mfile)
	want := fmt.Sprintf("next hop mx-ee.sec.test:%[1]s: dane (1 usable TLSA record(s) at _%[1]s._tcp.mx-ee.sec.test.)", w.port)
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("explain: code %d, want %q in\n%s\n%s", code, want, out, errOut)
	}

	ipHop := filepath.Join(dir, "iphop.toml")
	if err := os.WriteFile(ipHop, []byte("[[route]]\ndomain = \"*\"\nnexthop = \"[192.0.2.1]:25\"\ntls = \"dane\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = ferry().Run(t, "check-config", ipHop)
	if want := ipHop + `:4: route.tls: want next hops named by host name with tls = "dane"`; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("check-config of an IP next hop with dane: code %d, want %q in %q", code, want, errOut)
	}
}
