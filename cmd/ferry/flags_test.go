package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseFlags checks the shared parser: flags anywhere, "--" ends
// them, empty values refused with the flag named first, -h exits 0.
func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		pos   string
		json  bool
		spool string
		code  int
		ok    bool
		first string
	}{
		{args: []string{"HOST", "--json"}, pos: "HOST", json: true, ok: true},
		{args: []string{"--spool", "/s", "A", "B", "--json"}, pos: "A,B", json: true, spool: "/s", ok: true},
		{args: []string{"A", "--", "--json", "-"}, pos: "A,--json,-", ok: true},
		{args: []string{"-", "--json"}, pos: "-", json: true, ok: true},
		{args: []string{"--spool", ""}, code: 2, first: "ferry t: --spool: empty value (give a value, or leave the flag out for the default)"},
		{args: []string{"A", "--spool="}, code: 2, first: "ferry t: --spool: empty value (give a value, or leave the flag out for the default)"},
		{args: []string{"--json", "", "A"}, pos: ",A", json: true, ok: true}, // an empty positional argument is the command's to judge
		{args: []string{"A", "--nope"}, code: 2, first: "flag provided but not defined: -nope"},
		{args: []string{"A", "-h"}, code: 0},
	} {
		fs := flag.NewFlagSet("ferry t", flag.ContinueOnError)
		var out bytes.Buffer
		fs.SetOutput(&out)
		asJSON := fs.Bool("json", false, "json")
		spool := fs.String("spool", "", "spool")
		pos, code, ok := parseFlags(fs, tc.args)
		first, _, _ := strings.Cut(out.String(), "\n")
		if ok != tc.ok || code != tc.code || ok && (strings.Join(pos, ",") != tc.pos || *asJSON != tc.json || *spool != tc.spool) || tc.first != "" && first != tc.first {
			t.Errorf("parseFlags(%q) = %q %d %v (json %v, spool %q), first line %q; want %q %d %v (json %v, spool %q), %q",
				tc.args, pos, code, ok, *asJSON, *spool, first, tc.pos, tc.code, tc.ok, tc.json, tc.spool, tc.first)
		}
	}
}

// TestCheckArgs checks that a wrong number of arguments is named first.
func TestCheckArgs(t *testing.T) {
	for _, tc := range []struct {
		pos      []string
		min, max int
		first    string
	}{
		{nil, 1, 1, "ferry t: missing argument: want ID"},
		{[]string{"a", "b"}, 1, 1, `ferry t: unexpected argument "b"`},
		{[]string{"a"}, 0, 0, `ferry t: unexpected argument "a"`},
		{[]string{"a", "b", "c"}, 1, -1, ""},
	} {
		fs := flag.NewFlagSet("ferry t", flag.ContinueOnError)
		var out bytes.Buffer
		fs.SetOutput(&out)
		ok := checkArgs(fs, tc.pos, tc.min, tc.max, "ID")
		first, _, _ := strings.Cut(out.String(), "\n")
		if ok != (tc.first == "") || first != tc.first {
			t.Errorf("checkArgs(%q, %d, %d) = %v, %q; want %q", tc.pos, tc.min, tc.max, ok, first, tc.first)
		}
	}
}

// TestFindConfig checks the configuration lookup: --config, then
// FERRY_CONFIG (set means used: empty or missing is an error), then the
// system file when it exists, else the built-in defaults.
func TestFindConfig(t *testing.T) {
	dir := t.TempDir()
	system := filepath.Join(dir, "etc-ferry.toml")
	env := filepath.Join(dir, "env.toml")
	os.WriteFile(env, nil, 0o600)
	lookup := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	none := lookup(nil)
	if f, err := findConfig("", none, system); err != nil || f != "" {
		t.Errorf("no file anywhere: %q, %v; want the defaults", f, err)
	}
	os.WriteFile(system, nil, 0o600)
	if f, err := findConfig("", none, system); err != nil || f != system {
		t.Errorf("system file: %q, %v", f, err)
	}
	if f, err := findConfig("/given.toml", lookup(map[string]string{"FERRY_CONFIG": env}), system); err != nil || f != "/given.toml" {
		t.Errorf("--config: %q, %v", f, err)
	}
	if f, err := findConfig("", lookup(map[string]string{"FERRY_CONFIG": env}), system); err != nil || f != env {
		t.Errorf("FERRY_CONFIG: %q, %v", f, err)
	}
	if _, err := findConfig("", lookup(map[string]string{"FERRY_CONFIG": ""}), system); err == nil || !strings.Contains(err.Error(), "set but empty") {
		t.Errorf("empty FERRY_CONFIG: %v", err)
	}
	if _, err := findConfig("", lookup(map[string]string{"FERRY_CONFIG": filepath.Join(dir, "missing")}), system); err == nil || !strings.Contains(err.Error(), "FERRY_CONFIG=") {
		t.Errorf("missing FERRY_CONFIG file: %v", err)
	}
}
