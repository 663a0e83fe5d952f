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
// admin API is switched off (admin.address = "off").
var ErrOff = errors.New(`the admin API is off (admin.address = "off")`)

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path
// holds 108 octets with the terminating NUL).
const maxSocketPath = 107

// AddrFileName is the file in the spool directory where a running server
// records its admin address (see WriteAddrFile).
const AddrFileName = "admin.addr"

// IsUnixSocket reports whether addr names a Unix socket: an absolute path.
func IsUnixSocket(addr string) bool { return filepath.IsAbs(addr) }

// Listen listens on addr: "host:port" for TCP (serve it behind Protect
// with a token), or an absolute path for a Unix socket, made readable and
// writable by the owner only (the user the server runs as). A stale socket file left by a
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
	if len(addr) > maxSocketPath {
		return nil, fmt.Errorf("admin API: socket path %s has %d octets; Unix sockets allow at most %d (set admin.address to a shorter path)", addr, len(addr), maxSocketPath)
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

// Published is what a running server records in spool/admin.addr for
// "ferry queue --spool DIR": its admin address and, for a TCP listener, the
// token file clients read.
type Published struct {
	Addr      string
	TokenFile string
}

// tokenFileTag starts the admin.addr line naming the token file.
const tokenFileTag = "token_file "

// WriteAddrFile records addr in spool/admin.addr so that "ferry queue
// --spool DIR" finds the running server. It replaces the file atomically.
func WriteAddrFile(spool, addr string) error {
	return WritePublished(spool, Published{Addr: addr})
}

// WritePublished records p in spool/admin.addr, replacing the file
// atomically: the address on the first line, then "token_file PATH" when
// there is one.
func WritePublished(spool string, p Published) error {
	text := p.Addr + "\n"
	if p.TokenFile != "" {
		text += tokenFileTag + p.TokenFile + "\n"
	}
	f, err := os.CreateTemp(spool, "."+AddrFileName+"-*")
	if err != nil {
		return fmt.Errorf("writing admin address: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
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
	p, err := ReadPublished(spool)
	return p.Addr, err
}

// ReadPublished returns what a server recorded in spool/admin.addr; the
// error wraps fs.ErrNotExist when there is none.
func ReadPublished(spool string) (Published, error) {
	name := filepath.Join(spool, AddrFileName)
	b, err := os.ReadFile(name)
	if err != nil {
		return Published{}, fmt.Errorf("reading admin address: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	p := Published{Addr: strings.TrimSpace(lines[0])}
	if p.Addr == "" {
		return Published{}, fmt.Errorf("reading admin address: %s is empty", name)
	}
	for _, l := range lines[1:] {
		if f, ok := strings.CutPrefix(l, tokenFileTag); ok {
			p.TokenFile = strings.TrimSpace(f)
		}
	}
	return p, nil
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
