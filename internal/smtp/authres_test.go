package smtp

import "testing"

// TestAuthResultsFormat: String keeps the reasons as comments (no ";" that
// would end a clause), Header leaves them out.
func TestAuthResultsFormat(t *testing.T) {
	a := &AuthResults{ARC: "none", DKIM: []DKIMResult{
		{Domain: "example.org", Selector: "s1", Algorithm: "rsa-sha256", Result: "pass"},
		{Domain: "example.com", Selector: "old", Result: "permerror", Reason: "no key for signature: lookup old._domainkey.example.com. on 10.0.0.53:53: no such host (x; y)"},
	}}
	if got, want := a.String(), "dkim=pass header.d=example.org header.s=s1 header.a=rsa-sha256; dkim=permerror (no key for signature: lookup old._domainkey.example.com. on 10.0.0.53:53: no such host [x, y]) header.d=example.com header.s=old; arc=none"; got != want {
		t.Errorf("String() = %q\nwant       %q", got, want)
	}
	if got, want := a.Header(), "dkim=pass header.d=example.org header.s=s1 header.a=rsa-sha256; dkim=permerror header.d=example.com header.s=old; arc=none"; got != want {
		t.Errorf("Header() = %q\nwant       %q", got, want)
	}
	if (*AuthResults)(nil).String() != "" || (&AuthResults{}).Header() != "dkim=none" {
		t.Error("empty results")
	}
}
