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
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.eml")
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
			out, rep, cerr := checkRoundTrip(t, src)
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
