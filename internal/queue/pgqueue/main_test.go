package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/ferrymta/ferry/internal/pgtest"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
)

// cluster is the private PostgreSQL cluster shared by this package's tests;
// nil when PostgreSQL is not installed (the tests skip).
var cluster *pgtest.Cluster

// skipReason says why cluster is nil.
var skipReason error

func TestMain(m *testing.M) {
	c, err := pgtest.Start()
	switch {
	case errors.Is(err, pgtest.ErrUnavailable):
		skipReason = err
	case err != nil:
		fmt.Fprintln(os.Stderr, "pgqueue tests:", err)
		os.Exit(1)
	default:
		cluster = c
	}
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgqueue tests:", err)
		}
	}
	os.Exit(code)
}

// newDB returns the URL of a fresh database, skipping t without PostgreSQL.
func newDB(t testing.TB) string {
	t.Helper()
	if cluster == nil {
		t.Skip("PostgreSQL not available:", skipReason)
	}
	u, err := cluster.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// quiet is a logger that drops everything.
func quiet() *slog.Logger { return queuetest.Quiet() }

// openQueue opens a queue on url, closed at the end of t.
func openQueue(t testing.TB, cfg Config) *Queue {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	q, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}
