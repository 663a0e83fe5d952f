package config

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func TestTLSPolicyKeys(t *testing.T) {
	c, err := Parse("ferry.toml", []byte(`
[delivery]
resolvers = ["127.0.0.1", "[::1]:5353"]
dnssec_resolver = "127.0.0.1:53"
mta_sts = false
mta_sts_ca_file = "/etc/ferry/test-ca.pem"
mta_sts_port = 8443
mx_port = 2525
tls_reports = false
tls_report_period = "1h"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := TLSPolicy{Resolvers: []string{"127.0.0.1", "[::1]:5353"}, DNSSECResolver: "127.0.0.1:53",
		MTASTSCAFile: "/etc/ferry/test-ca.pem", MTASTSPort: 8443, MXPort: 2525, TLSReportPeriod: time.Hour}
	if !reflect.DeepEqual(c.Delivery.TLSPolicy, want) {
		t.Errorf("parsed %+v, want %+v", c.Delivery.TLSPolicy, want)
	}
	// The effective configuration reads back the same.
	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := Parse("back.toml", buf.Bytes())
	if err != nil || !reflect.DeepEqual(back.Delivery.TLSPolicy, want) {
		t.Errorf("round trip %+v, %v\n%s", back.Delivery.TLSPolicy, err, buf.String())
	}
	if d := Default().Delivery.TLSPolicy; !d.MTASTS || !d.TLSReports || d.MXPort != 25 || d.MTASTSPort != 443 || d.DNSSECResolver != "" || d.Resolvers != nil {
		t.Errorf("defaults %+v", d)
	}
}

func TestTLSPolicyErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"[delivery]\n\ndnssec_resolver = \"unbound.local\"\n", `ferry.toml:3: delivery.dnssec_resolver: want a resolver address like "127.0.0.1", "127.0.0.1:5353" or "[::1]:53", got "unbound.local" ("unbound.local" is not an IP address (a resolver is named by its address))`},
		{"[delivery]\nresolvers = [\"127.0.0.1\", \"ns1\"]\n", `ferry.toml:2: delivery.resolvers: want a list of resolver addresses like "127.0.0.1", "127.0.0.1:5353" or "[::1]:53", got "ns1" ("ns1" is not an IP address (a resolver is named by its address))`},
		{"[delivery]\nmx_port = 0\n", `ferry.toml:2: delivery.mx_port: want a port number from 1 to 65535, got 0`},
		{"[delivery]\nmta_sts = \"yes\"\n", `ferry.toml:2: delivery.mta_sts: want true or false, got "yes"`},
	} {
		_, err := Parse("ferry.toml", []byte(tc.doc))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.doc, err, tc.want)
		}
	}
}
