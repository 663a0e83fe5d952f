package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// sizeUnits are the size suffixes: decimal (KB, MB, GB) and binary (KiB,
// MiB, GiB), matched case-insensitively.
func sizeUnit(s string) (int64, bool) {
	switch strings.ToLower(s) {
	case "", "b":
		return 1, true
	case "kb":
		return 1000, true
	case "mb":
		return 1000 * 1000, true
	case "gb":
		return 1000 * 1000 * 1000, true
	case "kib":
		return 1 << 10, true
	case "mib":
		return 1 << 20, true
	case "gib":
		return 1 << 30, true
	}
	return 0, false
}

// ParseSize parses a size: a number of octets ("1000"), or a whole number
// with a unit, decimal KB/MB/GB or binary KiB/MiB/GiB ("50MB", "64MiB").
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q does not start with a number", s)
	}
	unit, ok := sizeUnit(strings.TrimSpace(t[i:]))
	if !ok {
		return 0, fmt.Errorf("size %q has an unknown unit", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * unit, nil
}

// FormatSize formats a size in the largest unit that divides it exactly,
// so that ParseSize gives it back.
func FormatSize(n int64) string {
	if n == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3}} {
		if n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseDuration parses a Go duration ("5m", "1h30m") that may start with a
// number of days ("5d", "1d12h"). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(t, 'd'); i > 0 {
		n, err := strconv.ParseInt(t[:i], 10, 32)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("duration %q: bad number of days", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		t = t[i+1:]
		if t == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if days > 0 && d > math.MaxInt64-days {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return days + d, nil
}

// FormatDuration formats a duration as hours, minutes, seconds and
// milliseconds, leaving out zero parts ("5m", "1h30m", "120h"), so that
// ParseDuration gives it back.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		n    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", 1}} {
		if d >= u.n {
			fmt.Fprintf(&b, "%d%s", d/u.n, u.name)
			d %= u.n
		}
	}
	return b.String()
}

// checkDomain reports whether s is a domain name in letters, digits and
// hyphens (RFC 5321 §4.1.2 Domain; A-labels for internationalised names),
// with an optional final dot left out.
func checkDomain(s string) error {
	if s == "" {
		return errors.New("empty host name")
	}
	if len(s) > 253 {
		return errors.New("longer than 253 octets")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("an empty or over-long label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("a label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c >= 0x80 {
				return errors.New("non-ASCII characters are not allowed; write internationalised names as A-labels (xn--…)")
			}
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is not allowed; use letters, digits, '-' and A-labels (xn--…)", string(rune(c)))
			}
		}
	}
	return nil
}

// checkAddress checks a "host:port" listen address; the host may be empty
// (all addresses) and the port may be 0 (any free port).
func checkAddress(s string) error {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return errors.New("no port")
	}
	host, port := s[:i], s[i+1:]
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
		return nil
	}
	if host == "" || host == "localhost" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("%q is not an IP address", host)
	}
	return nil
}
