package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// maxLineLength bounds one line of a user file.
const maxLineLength = 4096

// Users is a parsed user file: user names and their password hashes. It is
// read-only once built and safe for concurrent use.
type Users struct {
	hashes map[string]hash
	// decoy is checked for unknown users so that a failed login costs the
	// same time whether or not the user exists.
	decoy *hash
}

// ParseUsers reads a user file (see docs/auth.md): one "user:hash" entry a
// line; empty lines and lines starting with "#" are ignored. name is used
// in errors, which read "NAME:LINE: problem".
func ParseUsers(name string, r io.Reader) (*Users, error) {
	u := &Users{hashes: map[string]hash{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLineLength)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") {
			continue
		}
		user, encoded, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want user:hash", name, n)
		}
		if err := CheckUserName(user); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if _, dup := u.hashes[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q listed twice", name, n, user)
		}
		h, err := parseHash(encoded)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: %w", name, n, user, err)
		}
		u.hashes[user] = h
		if u.decoy == nil {
			u.decoy = &h
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line over %d octets", name, n+1, maxLineLength)
		}
		return nil, fmt.Errorf("%s: read: %w", name, err)
	}
	return u, nil
}

// CheckUserName accepts a user name that can be typed in a SASL exchange
// and written in the file: valid UTF-8, no colon, no space or control
// character.
func CheckUserName(user string) error {
	if user == "" {
		return errors.New("empty user name")
	}
	if !utf8.ValidString(user) {
		return errors.New("user name is not valid UTF-8")
	}
	for _, c := range user {
		if c == ':' || unicode.IsSpace(c) || unicode.IsControl(c) {
			return fmt.Errorf("user name %q: no spaces, colons or control characters", user)
		}
	}
	return nil
}

// LoadUsers reads the user file at path.
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	return ParseUsers(path, f)
}

// Len returns the number of users.
func (u *Users) Len() int { return len(u.hashes) }

// Authenticate reports whether password is user's. Unknown users cost a
// hash computation too, so timing does not tell which users exist. The
// error is always nil: the check is local.
func (u *Users) Authenticate(user, password string) (bool, error) {
	h, ok := u.hashes[user]
	if !ok {
		if u.decoy != nil {
			u.decoy.verify(password)
		}
		return false, nil
	}
	return h.verify(password), nil
}

// File is a user file that can be read again while in use (on SIGHUP):
// Reload swaps in the new users atomically, and keeps the old ones when the
// file has an error. It implements smtpd.Authenticator.
type File struct {
	path  string
	users atomic.Pointer[Users]
}

// OpenFile loads the user file at path.
func OpenFile(path string) (*File, error) {
	f := &File{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the file again.
func (f *File) Reload() error {
	u, err := LoadUsers(f.path)
	if err != nil {
		return err
	}
	f.users.Store(u)
	return nil
}

// Users returns the users currently in force.
func (f *File) Users() *Users { return f.users.Load() }

// Authenticate checks user's password against the users in force.
func (f *File) Authenticate(user, password string) (bool, error) {
	return f.users.Load().Authenticate(user, password)
}
