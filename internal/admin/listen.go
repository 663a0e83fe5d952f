package admin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrOff is returned by Listen and by the CLI's address lookup when the
// admin API is switched off (admin.address = "").
var ErrOff = errors.New("the admin API is off (admin.address is empty)")

// AddrFileName is the file in the spool directory where a running server
// records its admin address (see WriteAddrFile).
const AddrFileName = "admin.addr"

// IsUnixSocket reports whether addr names a Unix socket: an absolute path.
func IsUnixSocket(addr string) bool { return filepath.IsAbs(addr) }

// Listen listens on addr: "host:port" for TCP (keep it on loopback: the
// API has no authentication), or an absolute path for a Unix socket, made
// readable and writable by the owner only. A stale socket file left by a
// server that is gone is replaced; a socket someone still answers on is an
// error.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, ErrOff
	}
	if !IsUnixSocket(addr) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("admin API: %w", err)
		}
		return ln, nil
	}
	if fi, err := os.Lstat(addr); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin API: %s exists and is not a socket", addr)
		}
		if c, err := net.DialTimeout("unix", addr, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin API: another process is listening on %s", addr)
		}
		if err := os.Remove(addr); err != nil {
			return nil, fmt.Errorf("admin API: removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	if err := os.Chmod(addr, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin API: %w", err)
	}
	return ln, nil
}

// ListenerAddr returns the address to publish for ln: the socket path for a
// Unix socket, else "host:port" with the port actually bound (useful for
// "127.0.0.1:0").
func ListenerAddr(ln net.Listener) string {
	if ua, ok := ln.Addr().(*net.UnixAddr); ok {
		return ua.Name
	}
	return ln.Addr().String()
}

// WriteAddrFile records addr in spool/admin.addr so that "ferry queue
// --spool DIR" finds the running server. It replaces the file atomically.
func WriteAddrFile(spool, addr string) error {
	f, err := os.CreateTemp(spool, "."+AddrFileName+"-*")
	if err != nil {
		return fmt.Errorf("writing admin address: %w", err)
	}
	if _, err := f.WriteString(addr + "\n"); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("writing admin address: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing admin address: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(spool, AddrFileName)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing admin address: %w", err)
	}
	return nil
}

// ReadAddrFile returns the admin address a server recorded in spool; the
// error wraps fs.ErrNotExist when there is none.
func ReadAddrFile(spool string) (string, error) {
	b, err := os.ReadFile(filepath.Join(spool, AddrFileName))
	if err != nil {
		return "", fmt.Errorf("reading admin address: %w", err)
	}
	addr := strings.TrimSpace(string(b))
	if addr == "" {
		return "", fmt.Errorf("reading admin address: %s is empty", filepath.Join(spool, AddrFileName))
	}
	return addr, nil
}

// RemoveAddrFile removes the address file at shutdown; a missing file is
// not an error.
func RemoveAddrFile(spool string) error {
	err := os.Remove(filepath.Join(spool, AddrFileName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing admin address: %w", err)
	}
	return nil
}
