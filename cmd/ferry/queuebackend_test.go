package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeQueueURL: --queue-url chooses the shared queue; a malformed URL
// or an unreachable server stops "ferry serve" with the host named and the
// password never shown, before any listener starts.
func TestServeQueueURL(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	for _, tc := range []struct{ url, want string }{
		{"postgres://ferry:s3cret@127.0.0.1:1/ferry?connect_timeout=5", `cannot connect to PostgreSQL at 127.0.0.1:1 (database "ferry", user "ferry")`},
		{"mysql://ferry:s3cret@127.0.0.1/ferry", `--queue-url: want a PostgreSQL URL (postgres://user@host/database): the scheme is "mysql", not postgres`},
		{"postgres://ferry:s3cret@127.0.0.1:1", "no database name"},
	} {
		var stdout, stderr bytes.Buffer
		code := runServe([]string{"--queue-url", tc.url, "--spool", spool, "--listen", "127.0.0.1:0", "--admin", "off"}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("--queue-url %q: exit %d, stderr %q; want 1 and %q", tc.url, code, stderr.String(), tc.want)
		}
		if strings.Contains(stderr.String()+stdout.String(), "s3cret") {
			t.Errorf("--queue-url %q: the password is shown: %s", tc.url, stderr.String())
		}
		if strings.Contains(stdout.String(), "listening") {
			t.Errorf("--queue-url %q: a listener started: %s", tc.url, stdout.String())
		}
	}
}
