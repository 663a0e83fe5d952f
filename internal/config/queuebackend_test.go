package config

import (
	"strings"
	"testing"
)

// TestQueueBackend: the postgres backend needs a URL; a bad URL is an error
// at its line that never repeats the password.
func TestQueueBackend(t *testing.T) {
	c, err := Parse("ferry.toml", []byte("[queue]\nbackend = \"postgres\"\nurl = \"postgres://ferry:s3cret@db.example:5432/ferry\"\nnode = \"relay-1\"\nlease_timeout = \"20s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.Backend != BackendPostgres || c.Queue.URL == "" || c.Queue.Node != "relay-1" || c.Queue.LeaseTimeout.Seconds() != 20 {
		t.Errorf("queue = %+v", c.Queue)
	}
	for _, tc := range []struct{ toml, want string }{
		{"[queue]\nbackend = \"postgres\"\n", `ferry.toml:2: queue.backend: want queue.url (a PostgreSQL URL) with backend = "postgres", got none`},
		{"[queue]\nbackend = \"mysql\"\n", `ferry.toml:2: queue.backend: want "segment" or "postgres", got "mysql" (unknown backend)`},
		{"[queue]\nurl = \"mysql://u:s3cret@h/db\"\n", `ferry.toml:2: queue.url: want a PostgreSQL URL (postgres://user@host/database): the scheme is "mysql", not postgres`},
		{"[queue]\nurl = \"postgres://u:s3cret@h\"\n", `ferry.toml:2: queue.url: want a PostgreSQL URL (postgres://user@host/database): no database name after the host`},
	} {
		_, err := Parse("ferry.toml", []byte(tc.toml))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: error\n %v\nwant\n %s", tc.toml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
