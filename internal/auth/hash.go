// Package auth holds Ferry's users for SMTP AUTH (RFC 4954): the user file
// of password hashes (bcrypt or argon2id), hashing new passwords for
// "ferry passwd", and the credential check the SMTP server calls. The file
// format is documented in docs/auth.md.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2Params are the argon2id parameters of a hash (RFC 9106 §3.1).
type Argon2Params struct {
	// Memory is the memory size in KiB (m).
	Memory uint32
	// Time is the number of passes (t).
	Time uint32
	// Threads is the degree of parallelism (p).
	Threads uint8
	// SaltLen and KeyLen are the salt and tag lengths in octets.
	SaltLen, KeyLen uint32
}

// DefaultArgon2Params returns RFC 9106 §4's second recommended option:
// 64 MiB, 3 passes, 4 lanes, 16-octet salt, 32-octet tag.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 64 * 1024, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}
}

// DefaultBcryptCost is the bcrypt cost "ferry passwd" uses.
const DefaultBcryptCost = 12

// Limits on the parameters accepted from a user file, so that one line
// cannot make every login take minutes or gigabytes.
const (
	maxArgon2Memory = 4 << 20 // KiB: 4 GiB
	maxArgon2Time   = 64
	maxBcryptCost   = 16
)

// argon2Version is the only version accepted: 0x13 (RFC 9106 §3.1).
const argon2Version = 19

// ErrUnknownScheme is returned for a hash that is neither bcrypt nor
// argon2id.
var ErrUnknownScheme = errors.New("auth: unknown hash scheme (want $2y$/$2b$/$2a$ bcrypt or $argon2id$)")

// HashBcrypt returns the bcrypt hash of password with cost.
func HashBcrypt(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("auth: bcrypt: %w", err)
	}
	return string(h), nil
}

// HashArgon2id returns the argon2id hash of password with a fresh random
// salt, in the PHC string format:
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>, salt and hash in base64
// without padding.
func HashArgon2id(password string, p Argon2Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return formatArgon2(p, salt, key), nil
}

func formatArgon2(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func (p Argon2Params) check() error {
	switch {
	case p.Threads < 1:
		return errors.New("auth: argon2id: p must be at least 1")
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("auth: argon2id: t must be 1..%d", maxArgon2Time)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgon2Memory:
		return fmt.Errorf("auth: argon2id: m must be 8*p..%d KiB", maxArgon2Memory)
	case p.SaltLen < 8 || p.SaltLen > 64:
		return errors.New("auth: argon2id: salt must be 8..64 octets")
	case p.KeyLen < 16 || p.KeyLen > 64:
		return errors.New("auth: argon2id: hash must be 16..64 octets")
	}
	return nil
}

// hash is a parsed password hash.
type hash struct {
	bcrypt []byte // the whole bcrypt hash, or nil
	// argon2id
	params    Argon2Params
	salt, key []byte
}

// parseHash checks a hash from a user file.
func parseHash(s string) (hash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil {
			return hash{}, fmt.Errorf("auth: bcrypt hash: %w", err)
		}
		if cost > maxBcryptCost {
			return hash{}, fmt.Errorf("auth: bcrypt cost %d over %d", cost, maxBcryptCost)
		}
		if len(s) != 60 {
			return hash{}, errors.New("auth: bcrypt hash: want 60 characters")
		}
		return hash{bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2(s)
	}
	return hash{}, ErrUnknownScheme
}

// parseArgon2 parses the PHC string format of an argon2id hash.
func parseArgon2(s string) (hash, error) {
	f := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(f) != 6 || f[0] != "" {
		return hash{}, errors.New("auth: argon2id hash: want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	if f[2] != "v="+strconv.Itoa(argon2Version) {
		return hash{}, fmt.Errorf("auth: argon2id hash: version %q, want v=19", f[2])
	}
	var p Argon2Params
	seen := map[string]bool{}
	for _, kv := range strings.Split(f[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || seen[k] {
			return hash{}, fmt.Errorf("auth: argon2id hash: bad parameter %q", kv)
		}
		seen[k] = true
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return hash{}, fmt.Errorf("auth: argon2id hash: bad parameter %q", kv)
			}
			p.Threads = uint8(n)
		default:
			return hash{}, fmt.Errorf("auth: argon2id hash: unknown parameter %q", kv)
		}
	}
	if len(seen) != 3 {
		return hash{}, errors.New("auth: argon2id hash: want parameters m, t and p")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(f[4])
	if err != nil {
		return hash{}, fmt.Errorf("auth: argon2id salt: %w", err)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(f[5])
	if err != nil {
		return hash{}, fmt.Errorf("auth: argon2id hash: %w", err)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return hash{}, err
	}
	return hash{params: p, salt: salt, key: key}, nil
}

// verify reports whether password matches h, in time independent of where
// the two differ.
func (h hash) verify(password string) bool {
	if h.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(h.bcrypt, []byte(password)) == nil
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// VerifyHash reports whether password matches the bcrypt or argon2id hash
// encoded; it fails when encoded is not a valid hash.
func VerifyHash(encoded, password string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	return h.verify(password), nil
}
