package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testMessage is one message of testdata/.
type testMessage struct {
	name string // file name without ".eml"
	data []byte // CRLF line ends, as on the wire
}

// rcpt is the recipient a test gives this message, so that the captured
// copy can be told apart: "NAME@DOMAIN".
func (m testMessage) rcpt(domain string) string { return m.name + "@" + domain }

// loadMessages reads every testdata/*.eml, sorted by name.
func loadMessages(t *testing.T) []testMessage {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("testdata holds %d messages, want at least 5", len(files))
	}
	var out []testMessage
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, testMessage{name: strings.TrimSuffix(filepath.Base(f), ".eml"), data: data})
	}
	return out
}
