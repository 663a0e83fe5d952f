package dsn

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden reports in testdata/golden")

// build runs Build on a case.
func (c goldenCase) build(t testing.TB) []byte {
	t.Helper()
	var orig *strings.Reader
	if c.original != "" {
		orig = strings.NewReader(c.original)
	}
	var msg []byte
	var err error
	if orig == nil {
		msg, err = Build(c.report, nil)
	} else {
		msg, err = Build(c.report, orig)
	}
	if err != nil {
		t.Fatalf("%s: Build: %v", c.name, err)
	}
	return msg
}

// TestGolden compares every report kind with its golden file, byte for byte.
// Run with -update to rewrite them, then read them.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			got := c.build(t)
			// RFC 5322 §2.1.1: lines SHOULD be at most 78
			// characters; these inputs allow it everywhere.
			for i, line := range strings.Split(string(got), "\r\n") {
				if n := utf8.RuneCountInString(line); n > 78 {
					t.Errorf("line %d has %d characters: %q", i+1, n, line)
				}
			}
			file := filepath.Join("testdata", "golden", c.name+".eml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("report differs from %s (run with -update and review the diff)\n--- got ---\n%s", file, got)
			}
		})
	}
}

// TestBuildDeterministic checks that the same input gives the same report
// (the golden tests rely on it) and different Message-IDs give different
// boundaries.
func TestBuildDeterministic(t *testing.T) {
	c := goldenCases()[0]
	a, b := c.build(t), c.build(t)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same report differ")
	}
	c.report.MessageID = "other@relay.example.com"
	d := c.build(t)
	if boundaryOf(t, a) == boundaryOf(t, d) {
		t.Error("different reports share a boundary")
	}
}
