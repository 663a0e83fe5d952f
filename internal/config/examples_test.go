package config

import (
	"path/filepath"
	"testing"
)

// TestExamples loads every configuration in examples/: the shipped
// examples must be valid as they are.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("examples %v: want at least the legacy gateway and the smart host", files)
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(c.Routes) == 0 || c.Queue.Spool != "/var/spool/ferry" {
			t.Errorf("%s: routes %d, spool %q: want routes and the spool the systemd unit allows", f, len(c.Routes), c.Queue.Spool)
		}
	}
}
