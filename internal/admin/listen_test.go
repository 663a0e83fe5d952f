package admin

import (
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// shortTempDir returns a directory with a path short enough for a Unix
// socket (sun_path holds about 100 octets).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestUnixSocket serves the API on a Unix socket, replaces a stale
// socket, and refuses one that is in use.
func TestUnixSocket(t *testing.T) {
	q, _ := openQueue(t, discardLogger(), nil)
	id := put(t, q, plainBody, "a@x.test", "b@y.test")
	sock := filepath.Join(shortTempDir(t), "admin.sock")

	// A stale socket file: bound, then the listener is gone without unlinking.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	ln, err := Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	srv := &http.Server{Handler: New(Options{Queue: q})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, %v", fi.Mode(), err)
	}
	if ListenerAddr(ln) != sock {
		t.Errorf("ListenerAddr = %q", ListenerAddr(ln))
	}
	cl := NewClient(sock)
	got, err := cl.List(testCtx(t), Query{})
	if err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("list over the socket = %v, %v", got, err)
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Listen = %v, want in-use error", err)
	}
	notSock := filepath.Join(filepath.Dir(sock), "file")
	os.WriteFile(notSock, nil, 0o600)
	if _, err := Listen(notSock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a file = %v", err)
	}
	if _, err := Listen(""); !errors.Is(err, ErrOff) {
		t.Errorf("Listen(\"\") = %v", err)
	}
}

// TestNotRunning checks the error when no server answers.
func TestNotRunning(t *testing.T) {
	addr := testrelay.RefusedAddr(t)
	for _, a := range []string{addr, filepath.Join(shortTempDir(t), "none.sock")} {
		_, err := NewClient(a).List(testCtx(t), Query{})
		var nr *NotRunningError
		if !errors.As(err, &nr) || err.Error() != "no ferry serve running at "+a+" (is admin.address right?)" {
			t.Errorf("List at %s = %v", a, err)
		}
	}
}

// TestAddrFile round-trips the spool's address file.
func TestAddrFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadAddrFile(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadAddrFile without a file = %v", err)
	}
	if err := WriteAddrFile(dir, "127.0.0.1:8025"); err != nil {
		t.Fatal(err)
	}
	if err := WriteAddrFile(dir, "127.0.0.1:9025"); err != nil {
		t.Fatal(err)
	}
	if a, err := ReadAddrFile(dir); err != nil || a != "127.0.0.1:9025" {
		t.Errorf("ReadAddrFile = %q, %v", a, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("spool holds %d files, want only %s", len(entries), AddrFileName)
	}
	if err := RemoveAddrFile(dir); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAddrFile(dir); err != nil {
		t.Errorf("second RemoveAddrFile = %v", err)
	}
}
