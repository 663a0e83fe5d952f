package downgrade

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestGolden converts every testdata/golden/*.eml and compares the output
// with NAME.golden and the report (or error) with NAME.report.json.
func TestGolden(t *testing.T) { golden(t, "testdata/golden", false) }

// TestGolden8BitMIME is TestGolden for the 8BITMIME target
// (Options.EightBit), with the inputs of testdata/golden8bit.
func TestGolden8BitMIME(t *testing.T) { golden(t, "testdata/golden8bit", true) }

func golden(t *testing.T, dir string, eightBit bool) {
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".eml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, rep, _, cerr := checkRoundTripFor(t, src, Options{EightBit: eightBit})
			var summary []byte
			if cerr != nil {
				var e *Error
				errors.As(cerr, &e)
				summary, _ = json.MarshalIndent(map[string]string{"error": cerr.Error(), "enhanced": e.Enhanced()}, "", "  ")
			} else {
				summary, _ = json.MarshalIndent(rep, "", "  ")
			}
			summary = append(summary, '\n')
			base := strings.TrimSuffix(in, ".eml")
			if *update {
				if err := os.WriteFile(base+".golden", out, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(base+".report.json", summary, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantOut, err := os.ReadFile(base + ".golden")
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			wantRep, err := os.ReadFile(base + ".report.json")
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(out, wantOut) {
				t.Errorf("output differs from %s.golden:\n got: %q\nwant: %q", base, out, wantOut)
			}
			if !bytes.Equal(summary, wantRep) {
				t.Errorf("report differs from %s.report.json:\n got: %s\nwant: %s", base, summary, wantRep)
			}
		})
	}
}

func TestReportSummary(t *testing.T) {
	r := &Report{
		Changed: true,
		Parts: []PartReport{
			{OldCTE: "8bit", NewCTE: "quoted-printable"}, {OldCTE: "8bit", NewCTE: "quoted-printable"},
			{OldCTE: "", NewCTE: "base64"},
		},
		Headers:    []HeaderReport{{Field: "Subject"}},
		DKIMSigned: true,
	}
	want := "converted 3 parts (8bit→quoted-printable, 7bit→base64), 1 header encoded, DKIM signature invalidated"
	if got := r.Summary(); got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	if got := (&Report{}).Summary(); got != "unchanged" {
		t.Errorf("Summary of no change = %q", got)
	}
}

// TestSevenBitUntouched checks that messages with nothing to convert come
// out byte for byte as they went in.
func TestSevenBitUntouched(t *testing.T) {
	for _, name := range []string{"pure-ascii.eml", "seven-bit-multipart.eml"} {
		in, err := os.ReadFile(filepath.Join("testdata/golden", name))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		rep, err := Convert(&out, bytes.NewReader(in), Options{})
		if err != nil || rep.Changed || !bytes.Equal(out.Bytes(), in) {
			t.Errorf("%s: changed %v, err %v, identical %v", name, rep.Changed, err, bytes.Equal(out.Bytes(), in))
		}
	}
}
