// Package pgtest runs a private PostgreSQL cluster for tests: initdb into a
// temporary directory as an unprivileged user, listening only on a Unix
// socket in that directory, stopped (and removed) at the end. It uses
// Debian's postgresql package (installed by .ci/run); tests skip with a
// message when it is missing.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// binDirs are where Debian installs the server programs, newest first.
var binDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// ErrUnavailable is returned by Start when PostgreSQL is not installed.
var ErrUnavailable = errors.New("pgtest: PostgreSQL server programs not found (install Debian's postgresql package)")

// dbUser is the cluster's superuser role.
const dbUser = "ferry"

// Cluster is one private PostgreSQL cluster.
type Cluster struct {
	// Dir holds the data directory, the socket and the server log.
	Dir  string
	bin  string
	data string
	log  string
	// osUser runs the server when the tests run as root; nil otherwise.
	osUser *user.User
	dbs    atomic.Int64
}

// Start creates and starts a cluster. Call Stop when done (TestMain).
func Start() (*Cluster, error) {
	bin := ""
	for _, d := range binDirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			bin = d
			break
		}
	}
	if bin == "" {
		return nil, ErrUnavailable
	}
	dir, err := os.MkdirTemp("", "ferry-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{Dir: dir, bin: bin, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "server.log")}
	if err := c.setUp(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.StartServer(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// setUp makes the directory usable by the server's user and runs initdb.
func (c *Cluster) setUp() error {
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: use a dedicated unprivileged
		// user (made by .ci/run), else Debian's postgres, else nobody.
		for _, name := range []string{"ferry-pg", "postgres", "nobody"} {
			if u, err := user.Lookup(name); err == nil {
				c.osUser = u
				break
			}
		}
		if c.osUser == nil {
			return errors.New("pgtest: running as root and no unprivileged user (ferry-pg, postgres, nobody) to run PostgreSQL")
		}
		if err := os.Chmod(c.Dir, 0o755); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		uid, _ := strconv.Atoi(c.osUser.Uid)
		gid, _ := strconv.Atoi(c.osUser.Gid)
		if err := os.Chown(c.Dir, uid, gid); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	out, err := c.run("initdb", "-D", c.data, "-U", dbUser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	conf := fmt.Sprintf(`
listen_addresses = ''
unix_socket_directories = '%s'
max_connections = 200
shared_buffers = 64MB
fsync = on
synchronous_commit = on
log_min_messages = warning
`, c.Dir)
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: write postgresql.conf: %w", err)
	}
	return nil
}

// run runs a server program as the cluster's user.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.osUser != nil {
		cmd = exec.Command(path, args...)
		uid, _ := strconv.Atoi(c.osUser.Uid)
		gid, _ := strconv.Atoi(c.osUser.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+c.Dir)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.Dir
	return cmd.CombinedOutput()
}

// StartServer starts the server and waits until it accepts connections.
func (c *Cluster) StartServer() error {
	out, err := c.run("pg_ctl", "-D", c.data, "-l", c.log, "-w", "-t", "120", "start")
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, c.Log())
	}
	return nil
}

// StopServer stops the server at once (fast shutdown: sessions are ended,
// committed work stays), as when the database goes away under a relay.
func (c *Cluster) StopServer() error {
	out, err := c.run("pg_ctl", "-D", c.data, "-m", "fast", "-w", "-t", "120", "stop")
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Stop stops the server and removes the cluster's directory.
func (c *Cluster) Stop() error {
	err := c.StopServer()
	if rerr := os.RemoveAll(c.Dir); err == nil {
		err = rerr
	}
	return err
}

// Log returns the server log (for failure messages).
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// URL returns the connection URL of database db.
func (c *Cluster) URL(db string) string {
	q := url.Values{"host": {c.Dir}}
	return "postgres://" + dbUser + "@/" + url.PathEscape(db) + "?" + q.Encode()
}

// CreateDB creates a fresh, empty database and returns its URL.
func (c *Cluster) CreateDB(ctx context.Context) (string, error) {
	name := fmt.Sprintf("ferry_%d_%d", os.Getpid(), c.dbs.Add(1))
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.URL(name), nil
}

// WaitReady waits until the server accepts connections again (after
// StartServer from another goroutine, or a restart).
func (c *Cluster) WaitReady(ctx context.Context) error {
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: server not ready: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Describe names the cluster for logs.
func (c *Cluster) Describe() string {
	return "PostgreSQL in " + c.Dir + " (" + strings.TrimSuffix(filepath.Base(filepath.Dir(c.bin)), "/") + ")"
}

// ForTest starts a cluster for one test and stops it when the test ends,
// logging the server's log when the test failed; it skips t when
// PostgreSQL is not installed.
func ForTest(t testing.TB) *Cluster {
	t.Helper()
	c, err := Start()
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL log:\n%s", c.Log())
		}
		c.Stop()
	})
	return c
}
