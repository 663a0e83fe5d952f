package auth

import (
	"strings"
	"testing"
)

// FuzzParseUsers feeds arbitrary user files to the parser: it must not
// panic, an error must name the file and a line, and every user it accepts
// must have a name CheckUserName accepts.
func FuzzParseUsers(f *testing.F) {
	f.Add("php:" + phpBcrypt + "\n# comment\n\n")
	f.Add("a:" + refArgon2id + "\nb:$2y$04$abc\n")
	f.Add("a:$argon2id$v=19$m=64,t=1,p=1,p=2$$\n")
	f.Fuzz(func(t *testing.T, file string) {
		u, err := ParseUsers("users.txt", strings.NewReader(file))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "users.txt:") {
				t.Fatalf("error without file and line: %v", err)
			}
			return
		}
		for name := range u.hashes {
			if CheckUserName(name) != nil {
				t.Fatalf("accepted user %q", name)
			}
		}
	})
}
