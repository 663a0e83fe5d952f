package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/config"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(good, []byte("[queue]\nspool = \"/tmp/spool\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("[queue]\nspool = 1\n[log]\nlevel = \"loud\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string // a substring
		stderrLine []string
	}{
		{"valid", []string{good}, 0, "[queue]\nspool = \"/tmp/spool\"\n", nil},
		{"quiet", []string{"-q", good}, 0, "", nil},
		{"defaults", []string{"-defaults"}, 0, "[[listener]]\naddress = \"127.0.0.1:2525\"\n", nil},
		{"errors", []string{bad}, 1, "", []string{
			bad + `:2: queue.spool: want a directory path, got 1`,
			bad + `:4: log.level: want "debug", "info", "warn" or "error", got "loud"`,
		}},
		{"missing file", []string{filepath.Join(dir, "none.toml")}, 1, "", []string{"read config: open " + filepath.Join(dir, "none.toml") + ": no such file or directory"}},
		{"no file", nil, 2, "", nil},
		{"two files", []string{good, bad}, 2, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"check-config"}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			if tc.stdout != "" && !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out.String())
			}
			if tc.stdout == "" && out.Len() > 0 {
				t.Errorf("unexpected stdout:\n%s", out.String())
			}
			if tc.stderrLine != nil && errb.String() != strings.Join(tc.stderrLine, "\n")+"\n" {
				t.Errorf("stderr:\n%s\nwant:\n%s", errb.String(), strings.Join(tc.stderrLine, "\n"))
			}
		})
	}
	// What check-config prints is itself a valid configuration.
	var out bytes.Buffer
	if code := run([]string{"check-config", good}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	if _, err := config.Parse("printed.toml", out.Bytes()); err != nil {
		t.Errorf("printed config does not parse: %v", err)
	}
}
