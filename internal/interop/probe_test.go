package interop

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/postfixtest"
)

// probeJSON is the part of "ferry probe --json" these tests read.
type probeJSON struct {
	Target   string `json:"target"`
	Greeting string `json:"greeting"`
	ESMTP    bool   `json:"esmtp"`
	Keywords []struct {
		Keyword     string `json:"keyword"`
		Params      string `json:"params"`
		Description string `json:"description"`
	} `json:"keywords"`
	TLS *struct {
		Offered bool `json:"offered"`
	} `json:"tls"`
	Plans []struct {
		Message string `json:"message"`
		Plan    string `json:"plan"`
		Reply   string `json:"reply"`
	} `json:"plans"`
	Error string `json:"error"`
}

// eightBitPlan returns the probe's plan line for an 8-bit MIME message.
func (p probeJSON) eightBitPlan() (string, bool) {
	for _, pl := range p.Plans {
		if strings.HasPrefix(pl.Message, "8-bit") {
			return pl.Plan + pl.Reply, true
		}
	}
	return "", false
}

// TestProbePostfix runs "ferry probe" against a real Postfix, normal and
// with 8BITMIME discarded (issue 4, "ferry probe"): the report lists
// Postfix's EHLO keywords, each with its plain-words description, and what
// Ferry would do with an 8-bit message: send it as it is to the first,
// convert it for the second. The --json form parses and says the same.
func TestProbePostfix(t *testing.T) {
	normal := postfixtest.Start(t, postfixtest.Options{Hostname: "normal.postfix.test"})
	seven := postfixtest.Start(t, postfixtest.Options{Hostname: "domino.postfix.test", DiscardEHLOKeywords: []string{"8bitmime"}})
	for _, tc := range []struct {
		name      string
		pf        *postfixtest.Instance
		host      string
		eightBit  bool
		planCheck func(string) bool
	}{
		{"normal", normal, "normal.postfix.test", true, func(p string) bool {
			return strings.Contains(p, "body=8BITMIME") && !strings.Contains(p, "convert")
		}},
		{"discard-8bitmime", seven, "domino.postfix.test", false, func(p string) bool {
			return strings.Contains(p, "→7BIT converted")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := ferry().Run(t, "probe", "--ehlo", "probe.test", "--timeout", "15s", tc.pf.Addr())
			if code != 0 {
				t.Fatalf("ferry probe %s: exit %d\nstdout:\n%s\nstderr:\n%s", tc.pf.Addr(), code, out, errOut)
			}
			t.Logf("ferry probe %s:\n%s", tc.pf.Addr(), out)
			if !strings.Contains(out, "220 "+tc.host+" ESMTP Postfix") {
				t.Errorf("no Postfix greeting in the report:\n%s", out)
			}
			lines := strings.Split(out, "\n")
			want := map[string]string{ // keyword → words its line must hold
				"PIPELINING":          "without waiting for each reply",
				"SIZE":                "maximum message size",
				"ENHANCEDSTATUSCODES": "enhanced status codes",
				"DSN":                 "delivery status notification",
				"8BITMIME":            "8-bit MIME",
			}
			for kw, words := range want {
				line, found := keywordLine(lines, kw)
				if kw == "8BITMIME" && !tc.eightBit {
					if found {
						t.Errorf("8BITMIME listed though Postfix discards it: %q", line)
					}
					continue
				}
				if !found {
					t.Errorf("keyword %s missing from the report:\n%s", kw, out)
					continue
				}
				if !strings.Contains(line, words) {
					t.Errorf("keyword line %q lacks its description (%q)", line, words)
				}
			}
			if line, _ := keywordLine(lines, "SIZE"); !strings.Contains(line, "SIZE 10240000") {
				t.Errorf("SIZE line %q does not show Postfix's limit (message_size_limit 10240000)", line)
			}
			if strings.Contains(out, "STARTTLS:  can") || !strings.Contains(out, "STARTTLS:  not offered") {
				t.Errorf("this Postfix offers no STARTTLS; the report says otherwise:\n%s", out)
			}
			plan := ""
			for _, l := range lines {
				if strings.Contains(l, "8-bit MIME message:") {
					plan = l
				}
			}
			if !tc.planCheck(plan) {
				t.Errorf("plan for an 8-bit message: %q", plan)
			}

			js, errOut, code := ferry().Run(t, "probe", "--json", "--ehlo", "probe.test", "--timeout", "15s", tc.pf.Addr())
			if code != 0 {
				t.Fatalf("ferry probe --json: exit %d\n%s\n%s", code, js, errOut)
			}
			var rep probeJSON
			if err := json.Unmarshal([]byte(js), &rep); err != nil {
				t.Fatalf("ferry probe --json does not parse: %v\n%s", err, js)
			}
			if rep.Error != "" || !rep.ESMTP || !strings.HasPrefix(rep.Greeting, "220 "+tc.host) {
				t.Errorf("report: error %q, esmtp %v, greeting %q", rep.Error, rep.ESMTP, rep.Greeting)
			}
			if rep.TLS == nil || rep.TLS.Offered {
				t.Errorf("report: tls %+v, want offered false", rep.TLS)
			}
			kws := map[string]string{}
			for _, k := range rep.Keywords {
				if k.Description == "" {
					t.Errorf("keyword %s has no description", k.Keyword)
				}
				kws[strings.ToUpper(k.Keyword)] = k.Params
			}
			for _, kw := range []string{"PIPELINING", "SIZE", "ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8", "CHUNKING"} {
				if _, ok := kws[kw]; !ok {
					t.Errorf("--json keywords lack %s: %v", kw, kws)
				}
			}
			if _, ok := kws["8BITMIME"]; ok != tc.eightBit {
				t.Errorf("--json keywords: 8BITMIME listed %v, want %v", ok, tc.eightBit)
			}
			if kws["SIZE"] != "10240000" {
				t.Errorf("--json SIZE params %q, want 10240000", kws["SIZE"])
			}
			if p, ok := rep.eightBitPlan(); !ok || !tc.planCheck(p) {
				t.Errorf("--json plan for an 8-bit message: %q (found %v)", p, ok)
			}
		})
	}
}

// keywordLine finds the report's line for keyword kw ("  KW[ PARAMS]:
// description").
func keywordLine(lines []string, kw string) (string, bool) {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && (f[0] == kw+":" || f[0] == kw) && strings.HasPrefix(l, "  ") {
			return l, true
		}
	}
	return "", false
}
