package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Queue backends ([queue] backend).
const (
	// BackendSegment is the embedded segment log in the spool directory.
	BackendSegment = "segment"
	// BackendPostgres is a PostgreSQL database shared by several relays.
	BackendPostgres = "postgres"
)

const wantBackend = `"segment" or "postgres"`

func checkBackend(s string) (string, error) {
	switch s {
	case BackendSegment, BackendPostgres:
		return s, nil
	}
	return "", fmt.Errorf("unknown backend")
}

// queueURL stores a PostgreSQL connection URL. An error names the problem
// but never repeats the value, which may hold a password.
func (d *decoder) queueURL(dst *string) field {
	return func(v any, path string) {
		s, ok := v.(string)
		if !ok {
			d.errf(path, "want a PostgreSQL URL (postgres://user@host/database), got a %T", v)
			return
		}
		if err := CheckQueueURL(s); err != nil {
			d.errf(path, "want a PostgreSQL URL (postgres://user@host/database): %v", err)
			return
		}
		*dst = s
	}
}

// CheckQueueURL checks the form of a PostgreSQL connection URL
// ("postgres://…" or "postgresql://…" with a database name); an empty one is
// allowed (the segment backend needs none). The error never quotes the URL.
func CheckQueueURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("it does not parse as a URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("the scheme is %q, not postgres", u.Scheme)
	}
	if strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("no database name after the host")
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return fmt.Errorf("no host (give host:port, or ?host=/socket/directory)")
	}
	return nil
}

// checkQueueBackend checks that the postgres backend has its URL.
func (d *decoder) checkQueueBackend(q Queue) {
	if q.Backend == BackendPostgres && q.URL == "" {
		d.errf("queue.backend", "want queue.url (a PostgreSQL URL) with backend = \"postgres\", got none")
	}
}
