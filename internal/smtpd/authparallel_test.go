package smtpd

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// holdingUsers is an Authenticator whose checks all wait until release is
// closed, like slow password hashes running side by side; it counts the
// checks begun.
type holdingUsers struct {
	began   atomic.Int32
	release chan struct{}
}

func (h *holdingUsers) Authenticate(user, password string) (bool, error) {
	h.began.Add(1)
	<-h.release
	return false, nil
}

// TestParallelAuthCountedBeforeHashing: 200 parallel logins with a wrong
// password from one address start at most AuthMaxFailures checks: each
// attempt counts towards the lock-out before its hash is computed, so the
// rest are refused at once (454 4.7.0 while checks are in progress, 421
// 4.7.0 once the failures lock the address out) instead of all hashing
// side by side.
func TestParallelAuthCountedBeforeHashing(t *testing.T) {
	const logins, maxFailures = 200, 10
	h := &holdingUsers{release: make(chan struct{})}
	cfg := authConfig()
	cfg.Auth = h
	cfg.AuthMaxFailures = maxFailures
	cfg.MaxConnectionsPerIP = logins + 10
	_, addr := startServer(t, cfg, &memStore{}, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	replies := map[string]int{}
	var refused atomic.Int32
	for range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, addr)
			c.expectPrefix("220 ")
			c.send("EHLO client.test\r\n")
			for !strings.HasPrefix(c.expectPrefix("250"), "250 ") {
			}
			c.send("AUTH PLAIN " + plainIR("", "bob", "guess") + "\r\n")
			r := c.expectPrefix("")
			if strings.HasPrefix(r, "454 4.7.0") || strings.HasPrefix(r, "421 4.7.0") {
				refused.Add(1)
			}
			mu.Lock()
			replies[r[:min(len(r), 9)]]++
			mu.Unlock()
		}()
	}
	// Every login either starts a check (which holds) or is refused; once
	// all have, the checks are let go.
	deadline := time.Now().Add(30 * time.Second)
	for int(h.began.Load()+refused.Load()) < logins && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(h.release)
	wg.Wait()
	if n := h.began.Load(); n > maxFailures {
		t.Errorf("%d password checks started for %d parallel logins, want at most %d", n, logins, maxFailures)
	}
	if int(refused.Load()) < logins-maxFailures {
		t.Errorf("replies %v: want at least %d refusals 454/421 4.7.0", replies, logins-maxFailures)
	}
}

// TestAuthLimiterAttempts: checks in progress count with failures towards
// the limit (busy, not locked out); failures alone lock the address out; a
// success counts nothing once finished.
func TestAuthLimiterAttempts(t *testing.T) {
	l := newAuthLimiter(3, time.Minute)
	now := time.Now()
	const ip = "192.0.2.1"
	for i := range 3 {
		if got := l.attempt(ip, now); got != attemptOK {
			t.Fatalf("attempt %d: %d, want OK", i, got)
		}
	}
	if got := l.attempt(ip, now); got != attemptBusy {
		t.Fatalf("fourth attempt with three in progress: %d, want busy", got)
	}
	l.finish(ip, false, now) // a success
	if got := l.attempt(ip, now); got != attemptOK {
		t.Fatalf("attempt after a success: %d, want OK", got)
	}
	for range 3 {
		l.finish(ip, true, now)
	}
	if got := l.attempt(ip, now); got != attemptLocked || !l.locked(ip, now) {
		t.Fatalf("after three failures: %d, want locked", got)
	}
	if got := l.attempt(ip, now.Add(time.Minute)); got != attemptOK {
		t.Fatalf("after the window: %d, want OK", got)
	}
	if l.authenticatedRecently(ip, now) {
		t.Error("address trusted without a success recorded")
	}
	l.succeeded(ip, now)
	if !l.authenticatedRecently(ip, now.Add(59*time.Minute)) || l.authenticatedRecently(ip, now.Add(time.Hour)) {
		t.Error("a successful address is trusted for other than an hour")
	}
}
