package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/auth"
)

func TestPasswdCommand(t *testing.T) {
	tests := []struct {
		name, stdin, prefix string
		args                []string
	}{
		{"bcrypt", "correct horse battery\n", "alice@example.com:$2a$10$", []string{"--cost", "10", "alice@example.com"}},
		{"argon2id", "correct horse battery\r\n", "bob:$argon2id$v=19$m=65536,t=3,p=4$", []string{"--argon2id", "bob"}},
		{"no newline", "correct horse battery", "carol:$2a$10$", []string{"--cost=10", "carol"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := passwd(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			out := stdout.String()
			if !strings.HasPrefix(out, tc.prefix) || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Fatalf("output %q, want one line starting %q", out, tc.prefix)
			}
			// The printed line is a valid user file that verifies.
			users, err := auth.ParseUsers("stdout", strings.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			user := tc.args[len(tc.args)-1]
			if ok, _ := users.Authenticate(user, "correct horse battery"); !ok {
				t.Error("the printed hash does not verify")
			}
			if ok, _ := users.Authenticate(user, "correct horse batter"); ok {
				t.Error("the printed hash accepts a wrong password")
			}
		})
	}
}

func TestPasswdErrors(t *testing.T) {
	for _, tc := range []struct {
		name, stdin, want string
		args              []string
		code              int
	}{
		{"no user", "x\n", "Usage", nil, 2},
		{"two users", "x\n", "Usage", []string{"a", "b"}, 2},
		{"colon in user", "x\n", "no spaces, colons", []string{"a:b"}, 2},
		{"empty password", "\n", "empty password", []string{"alice"}, 1},
		{"no input", "", "empty password", []string{"alice"}, 1},
		{"cost", "x\n", "--cost 4", []string{"--cost", "4", "alice"}, 2},
	} {
		var stdout, stderr bytes.Buffer
		code := passwd(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
		if code != tc.code || stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.name, code, stdout.String(), stderr.String(), tc.code, tc.want)
		}
	}
}
