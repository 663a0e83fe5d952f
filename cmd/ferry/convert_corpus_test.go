package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/downgrade/downgradetest"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// corpusGlob is the project's own conversion test corpus.
const corpusGlob = "../../internal/downgrade/testdata/golden/*.eml"

// TestConvertCorpusCounts runs `ferry convert` over every message of the
// conversion test corpus and judges each result with a second MIME parser
// (go-message, see downgradetest): pass (7-bit, same leaves, same header
// text; for a message fit for 7-bit as it is, byte-identical), damaged, or
// refused (exit status 2). Messages are grouped by class, the "cN-" prefix
// of their file name (issue 17), "other" for the rest; the counts are
// logged (go test -run TestConvertCorpusCounts -v ./cmd/ferry) and no
// message of a class may be damaged or refused.
func TestConvertCorpusCounts(t *testing.T) {
	files, err := filepath.Glob(corpusGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	type count struct{ pass, damaged, refused, unjudged int }
	counts := map[string]*count{}
	for _, f := range files {
		base := filepath.Base(f)
		class := "other"
		if len(base) > 3 && base[0] == 'c' && base[2] == '-' {
			class = base[:2]
		}
		if counts[class] == nil {
			counts[class] = &count{}
		}
		c := counts[class]
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := runConvert([]string{f}, &stdout, &stderr)
		verdict := ""
		switch {
		case code == 2:
			c.refused++
			verdict = "refused: " + strings.TrimSpace(stderr.String())
		default:
			out := stdout.Bytes()
			n, err := downgrade.Scan(bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			switch cerr := downgradetest.Compare(in, out); {
			case n.SevenBit() && !bytes.Equal(in, out):
				c.damaged++
				verdict = "damaged: 7-bit message changed"
			case n.SevenBit():
				c.pass++ // byte-identical, as the relay sends it
			case errors.Is(cerr, downgradetest.ErrUnreadable):
				c.unjudged++
				verdict = "unjudged: " + cerr.Error()
			case cerr != nil:
				c.damaged++
				verdict = "damaged: " + cerr.Error()
			default:
				c.pass++
			}
			var cs bytes.Buffer
			if cc := runConvert([]string{"--check", f}, &cs, &cs); n.SevenBit() && cc != 0 {
				if verdict == "" {
					c.pass--
					c.damaged++
				}
				verdict += "; --check says it needs conversion"
			}
		}
		if verdict != "" {
			t.Logf("%s: %s", base, verdict)
			if class != "other" && !strings.HasPrefix(verdict, "unjudged") {
				t.Errorf("%s: %s", base, verdict)
			}
		}
	}
	classes := make([]string, 0, len(counts))
	for k := range counts {
		classes = append(classes, k)
	}
	sort.Strings(classes)
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s %5s %8s %8s %9s\n", "class", "pass", "damaged", "refused", "unjudged")
	for _, k := range classes {
		c := counts[k]
		fmt.Fprintf(&b, "%-6s %5d %8d %8d %9d\n", k, c.pass, c.damaged, c.refused, c.unjudged)
	}
	t.Logf("ferry convert over %d corpus messages:\n%s", len(files), b.String())
}

// TestConvertAgreesWithRelay checks, for every corpus message, that
// `ferry convert --check` and the relay's transfer plan for a next hop
// without 8BITMIME make the same decision (issue 17, class 7), and that a
// message the relay sends as it is comes out of `ferry convert`
// byte-identical.
func TestConvertAgreesWithRelay(t *testing.T) {
	files, err := filepath.Glob(corpusGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n, err := downgrade.Scan(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		plan, rep := deliver.Plan(deliver.NeedsOf(&smtp.Envelope{}, nil, n, int64(len(in))), smtp.Extensions{}, route.Policy{})
		relayConverts := rep != nil || plan.Convert
		var stdout, stderr bytes.Buffer
		code := runConvert([]string{"--check", f}, &stdout, &stderr)
		if (code != 0) != relayConverts {
			t.Errorf("%s: convert --check exit %d, relay converts: %v (plan %s)", filepath.Base(f), code, relayConverts, plan)
		}
		if relayConverts {
			continue
		}
		stdout.Reset()
		if code := runConvert([]string{f}, &stdout, &stderr); code != 0 || !bytes.Equal(stdout.Bytes(), in) {
			t.Errorf("%s: the relay sends it as it is, convert exit %d, byte-identical %v", filepath.Base(f), code, bytes.Equal(stdout.Bytes(), in))
		}
	}
}
