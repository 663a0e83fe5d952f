package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// AdminOff is the admin.address (and --admin) value that disables the admin
// API: the one spelling for the file and the command line alike.
const AdminOff = "off"

// AdminSocketName is the Unix socket in the spool directory where the
// admin API listens unless admin.address says otherwise.
const AdminSocketName = "admin.sock"

// wantAdmin is the expected form of admin.address.
const wantAdmin = `an address like "127.0.0.1:8025", an absolute Unix socket path, or "off"`

// AdminAddress returns where the admin API listens: "" when it is off,
// the socket AdminSocketName in the spool when admin.address is unset,
// else admin.address.
func (c Config) AdminAddress() string {
	switch c.Admin.Address {
	case AdminOff:
		return ""
	case "":
		return filepath.Join(c.Queue.Spool, AdminSocketName)
	}
	return c.Admin.Address
}

// IsLoopbackAddress reports whether the TCP address "host:port" binds to
// loopback only ("localhost", 127.0.0.0/8, ::1). An empty host (every
// address) is not loopback.
func IsLoopbackAddress(addr string) bool {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return false
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr[:i], "["), "]")
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func checkAdmin(s string) (string, error) {
	if s == AdminOff || filepath.IsAbs(s) {
		return s, nil
	}
	if err := checkAddress(s); err != nil {
		return "", fmt.Errorf("%v (or give an absolute path for a Unix socket)", err)
	}
	return s, nil
}

// admin decodes the [admin] table. A TCP address needs token_file: the
// TCP admin API answers only requests that carry the token.
func (d *decoder) admin(v any, path string, a *Admin) {
	d.table(v, path, map[string]field{
		"address":        d.strCheck(&a.Address, wantAdmin, false, checkAdmin),
		"token_file":     d.str(&a.TokenFile, wantPath),
		"metrics_listen": d.strCheck(&a.MetricsListen, wantListen+` or "" (none)`, true, checkListen),
	})
	if a.Address != "" && a.Address != AdminOff && !filepath.IsAbs(a.Address) && a.TokenFile == "" {
		d.errf(path+".address", "want admin.token_file with a TCP admin address (the TCP admin API requires a bearer token), got %q without one", a.Address)
	}
}
