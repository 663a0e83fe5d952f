package config

import (
	"os"
	"strings"
	"testing"
)

// TestDocsExample checks that the example at the end of docs/config.md is a
// valid configuration, and that the example error line there is what the
// loader prints for that mistake.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.LastIndex(text, "```toml\n")
	if start < 0 {
		t.Fatal("no ```toml example in docs/config.md")
	}
	example := text[start+len("```toml\n"):]
	example = example[:strings.Index(example, "```")]
	c, err := Parse("example.toml", []byte(example))
	if err != nil {
		t.Fatalf("docs/config.md example: %v", err)
	}
	if len(c.Listeners) != 2 || !c.Listeners[1].RequireTLS || len(c.Relay.SenderRules) != 1 || c.Relay.PerIP.Messages != 600 {
		t.Errorf("example parsed to %+v", c)
	}

	_, err = Parse("ferry.toml", []byte(strings.Repeat("\n", 12)+"[[listener]]\nadress = \"x\"\n"))
	if err == nil || !strings.Contains(text, strings.TrimPrefix(err.Error(), "ferry.toml:14: ")) {
		t.Errorf("docs/config.md does not show the unknown listener key error as printed: %v", err)
	}
}
