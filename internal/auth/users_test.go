package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferrymta/ferry/internal/smtpd"
)

// Hashes made by other software, so that Ferry reads what they write.
const (
	// PHP's password_hash documentation: password "rasmuslerdorf".
	phpBcrypt = "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a"
	// The argon2 reference implementation's test vector: argon2id, v=19,
	// password "password", salt "somesalt", t=2, m=64 MiB, p=1.
	refArgon2id = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
)

// smallArgon2 keeps the tests fast.
func smallArgon2() Argon2Params {
	return Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// File is what the SMTP server checks credentials with.
var _ smtpd.Authenticator = (*File)(nil)

func TestVerifyKnownHashes(t *testing.T) {
	for _, tc := range []struct {
		hash, password string
		want           bool
	}{
		{phpBcrypt, "rasmuslerdorf", true},
		{phpBcrypt, "rasmuslerdorF", false},
		{"$2b$" + phpBcrypt[4:], "rasmuslerdorf", true},
		{refArgon2id, "password", true},
		{refArgon2id, "passwore", false},
	} {
		got, err := VerifyHash(tc.hash, tc.password)
		if err != nil || got != tc.want {
			t.Errorf("VerifyHash(%q, %q) = %v, %v; want %v", tc.hash, tc.password, got, err, tc.want)
		}
	}
}

func TestHashRoundTrip(t *testing.T) {
	b, err := HashBcrypt("pässwörd with spaces", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a, err := HashArgon2id("pässwörd with spaces", smallArgon2())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("argon2id hash %q", a)
	}
	for _, h := range []string{b, a} {
		if ok, err := VerifyHash(h, "pässwörd with spaces"); !ok || err != nil {
			t.Errorf("%s: right password refused (%v)", h, err)
		}
		if ok, err := VerifyHash(h, "pässwörd with space"); ok || err != nil {
			t.Errorf("%s: wrong password accepted (%v)", h, err)
		}
	}
	again, err := HashArgon2id("pässwörd with spaces", smallArgon2())
	if err != nil || again == a {
		t.Errorf("two hashes share a salt: %q %q (%v)", a, again, err)
	}
	if _, err := HashArgon2id("x", Argon2Params{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}); err == nil {
		t.Error("t=0 accepted")
	}
}

func TestParseUsersErrors(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"no colon", "# users\n\nalice $2y$10$x\n", "users.txt:3: want user:hash"},
		{"empty user", ":" + phpBcrypt + "\n", "users.txt:1: empty user name"},
		{"space in user", "al ice:" + phpBcrypt + "\n", "users.txt:1: user name \"al ice\""},
		{"duplicate", "alice:" + phpBcrypt + "\nbob:" + phpBcrypt + "\nalice:" + phpBcrypt + "\n", "users.txt:3: user \"alice\" listed twice"},
		{"unknown scheme", "alice:{SHA}abc\n", "users.txt:1: user \"alice\": auth: unknown hash scheme"},
		{"plain text", "alice:secret\n", "users.txt:1: user \"alice\": auth: unknown hash scheme"},
		{"short bcrypt", "alice:$2y$10$abc\n", "users.txt:1: user \"alice\": auth: bcrypt hash"},
		{"bcrypt cost", "alice:$2y$31$" + phpBcrypt[7:] + "\n", "users.txt:1: user \"alice\": auth: bcrypt cost 31"},
		{"argon2 version", "alice:$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", "users.txt:1: user \"alice\": auth: argon2id hash: version \"v=16\""},
		{"argon2 params", "alice:$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", "want parameters m, t and p"},
		{"argon2 unknown param", "alice:$argon2id$v=19$m=64,t=1,x=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", "unknown parameter \"x=1\""},
		{"argon2 memory", "alice:$argon2id$v=19$m=99999999,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", "m must be"},
		{"argon2 salt", "alice:$argon2id$v=19$m=64,t=1,p=1$c29t*ZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", "argon2id salt"},
		{"argon2 fields", "alice:$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ\n", "want $argon2id$v=19"},
		{"argon2i", "alice:$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", "unknown hash scheme"},
		{"long line", "alice:" + strings.Repeat("x", 5000) + "\n", "users.txt:1: line over 4096 octets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseUsers("users.txt", strings.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestUsersAuthenticate(t *testing.T) {
	a, err := HashArgon2id("argon pass", smallArgon2())
	if err != nil {
		t.Fatal(err)
	}
	file := "# Ferry users\n\n  # indented comment\nphp:" + phpBcrypt + "\r\ncarol@example.com:" + a + "  \n"
	u, err := ParseUsers("users.txt", strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 {
		t.Fatalf("%d users", u.Len())
	}
	for _, tc := range []struct {
		user, password string
		want           bool
	}{
		{"php", "rasmuslerdorf", true},
		{"php", "", false},
		{"PHP", "rasmuslerdorf", false},
		{"carol@example.com", "argon pass", true},
		{"carol@example.com", "rasmuslerdorf", false},
		{"nobody", "rasmuslerdorf", false},
		{"", "", false},
	} {
		if got, err := u.Authenticate(tc.user, tc.password); got != tc.want || err != nil {
			t.Errorf("Authenticate(%q, %q) = %v, %v; want %v", tc.user, tc.password, got, err, tc.want)
		}
	}
	empty, err := ParseUsers("empty", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := empty.Authenticate("x", "y"); ok {
		t.Error("empty user file accepted a user")
	}
}

func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.txt")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("php:" + phpBcrypt + "\n")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Authenticate("php", "rasmuslerdorf"); !ok {
		t.Fatal("php refused")
	}
	b, err := HashBcrypt("new", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	write("dave:" + b + "\n")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Authenticate("php", "rasmuslerdorf"); ok {
		t.Error("removed user still accepted")
	}
	if ok, _ := f.Authenticate("dave", "new"); !ok {
		t.Error("added user refused")
	}
	write("dave:" + b + "\nbroken\n")
	if err := f.Reload(); err == nil || !strings.Contains(err.Error(), "users.txt:2: ") {
		t.Errorf("reload of a broken file: %v", err)
	}
	if ok, _ := f.Authenticate("dave", "new"); !ok {
		t.Error("a failed reload dropped the users in force")
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file opened")
	}
}

// TestDocsExample checks the user file example in docs/auth.md: it parses,
// and its users' password is "example".
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "auth.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```\n# Ferry SMTP AUTH users")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/auth.md has no user file example")
	}
	u, err := ParseUsers("docs/auth.md", strings.NewReader("#"+block))
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 {
		t.Fatalf("%d users in the example", u.Len())
	}
	for user := range u.hashes {
		if ok, _ := u.Authenticate(user, "example"); !ok {
			t.Errorf("example user %q: password refused", user)
		}
	}
}
