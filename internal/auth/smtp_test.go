package auth

import (
	"context"
	"io"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ferrysmtp "github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// userStore is an smtpd.Store that remembers who submitted each message.
type userStore struct {
	mu    sync.Mutex
	n     int
	users []string
}

func (s *userStore) NewID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return "ID" + strconv.Itoa(s.n)
}

func (s *userStore) Put(_ context.Context, env *ferrysmtp.Envelope, body io.Reader) (string, error) {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = append(s.users, env.Client.User)
	return env.ID, nil
}

// TestSMTPAuthWithUserFile runs Go's net/smtp client, an independent
// implementation, against the server checking a user file.
func TestSMTPAuthWithUserFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.txt")
	if err := os.WriteFile(path, []byte("php:"+phpBcrypt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := smtpd.DefaultConfig()
	cfg.Hostname = "mx.test"
	cfg.Auth = users
	cfg.AllowInsecureAuth = true // loopback; net/smtp allows PLAIN to 127.0.0.1
	cfg.AuthFailureDelay = time.Millisecond
	store := &userStore{}
	srv := smtpd.New(cfg, store, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	addr := l.Addr().String()
	msg := []byte("Subject: hi\r\n\r\nhello\r\n")
	err = smtp.SendMail(addr, smtp.PlainAuth("", "php", "wrong", "127.0.0.1"), "a@example.com", []string{"b@example.org"}, msg)
	if err == nil || !strings.Contains(err.Error(), "535") {
		t.Fatalf("wrong password: %v, want a 535", err)
	}
	if err := smtp.SendMail(addr, smtp.PlainAuth("", "php", "rasmuslerdorf", "127.0.0.1"), "a@example.com", []string{"b@example.org"}, msg); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.users) != 1 || store.users[0] != "php" {
		t.Errorf("messages from %q, want one from php", store.users)
	}
}
