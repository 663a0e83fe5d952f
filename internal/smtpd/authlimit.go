package smtpd

import (
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// authLimiter counts failed authentications per client IP address and
// locks an address out once it has max failures within window. Memory is
// bounded: each address keeps at most max timestamps, and addresses whose
// failures have all left the window are dropped.
type authLimiter struct {
	max    int
	window time.Duration

	mu        sync.Mutex
	failures  map[string][]time.Time
	inflight  map[string]int // checks in progress per address
	lastSweep time.Time
	// good holds when each address last authenticated successfully, for
	// the reserved connections; at most maxGoodAddrs entries.
	good map[string]time.Time
}

// authTrustTime is how long an address that authenticated successfully may
// use the reserved connections.
const authTrustTime = time.Hour

// maxGoodAddrs bounds the addresses remembered as authenticated.
const maxGoodAddrs = 4096

func newAuthLimiter(max int, window time.Duration) *authLimiter {
	return &authLimiter{max: max, window: window, failures: map[string][]time.Time{},
		inflight: map[string]int{}, good: map[string]time.Time{}}
}

// succeeded remembers that ip authenticated at now.
func (l *authLimiter) succeeded(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.good[ip]; !ok && len(l.good) >= maxGoodAddrs {
		oldest, at := "", now
		for a, t := range l.good {
			if now.Sub(t) >= authTrustTime {
				delete(l.good, a)
			} else if t.Before(at) {
				oldest, at = a, t
			}
		}
		if len(l.good) >= maxGoodAddrs {
			delete(l.good, oldest)
		}
	}
	l.good[ip] = now
}

// authenticatedRecently reports whether ip authenticated successfully
// within authTrustTime before now.
func (l *authLimiter) authenticatedRecently(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.good[ip]
	return ok && now.Sub(t) < authTrustTime
}

// locked reports whether ip is locked out at now.
func (l *authLimiter) locked(ip string, now time.Time) bool {
	if l.max <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recent(ip, now) >= l.max
}

// fail records a failure of ip at now and reports whether ip is now locked
// out.
func (l *authLimiter) fail(ip string, now time.Time) bool {
	if l.max <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	n := l.recent(ip, now)
	times := l.failures[ip]
	if len(times) >= l.max {
		times = times[1:] // keep the newest max
	}
	l.failures[ip] = append(times, now)
	return n+1 >= l.max
}

// Outcomes of authLimiter.attempt.
const (
	attemptOK     = iota // counted; check it, then call finish
	attemptLocked        // the address is locked out
	attemptBusy          // failures and checks in progress reach the limit
)

// attempt counts a credential check of ip before it is made: checks in
// progress count towards the limit together with recent failures, so
// parallel logins from one address cannot all be hashed before the first
// fails. It returns attemptLocked when the failures alone reach the limit,
// attemptBusy when the checks in progress make up the rest (try again
// soon), and attemptOK, counting the check, otherwise.
func (l *authLimiter) attempt(ip string, now time.Time) int {
	if l.max <= 0 {
		return attemptOK
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	n := l.recent(ip, now)
	switch {
	case n >= l.max:
		return attemptLocked
	case n+l.inflight[ip] >= l.max:
		return attemptBusy
	}
	l.inflight[ip]++
	return attemptOK
}

// finish ends a check counted by attempt; a failure is recorded at now.
func (l *authLimiter) finish(ip string, failed bool, now time.Time) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	if l.inflight[ip]--; l.inflight[ip] <= 0 {
		delete(l.inflight, ip)
	}
	l.mu.Unlock()
	if failed {
		l.fail(ip, now)
	}
}

// recent returns the number of failures of ip within the window before now,
// forgetting older ones.
func (l *authLimiter) recent(ip string, now time.Time) int {
	times := l.failures[ip]
	i := 0
	for i < len(times) && now.Sub(times[i]) >= l.window {
		i++
	}
	if i == len(times) {
		delete(l.failures, ip)
		return 0
	}
	if i > 0 {
		l.failures[ip] = times[i:]
	}
	return len(times) - i
}

// sweep drops addresses without recent failures, at most once a window.
func (l *authLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.window {
		return
	}
	l.lastSweep = now
	for ip, times := range l.failures {
		if now.Sub(times[len(times)-1]) >= l.window {
			delete(l.failures, ip)
		}
	}
}

// The AUTH replies (RFC 4954 §6).

func replyAuthOK() smtp.Reply { return reply(235, "2.7.0", "Authentication successful") }

func replyAuthFailed() smtp.Reply {
	return reply(535, "5.7.8", "Authentication credentials invalid")
}

func replyAuthCancelled() smtp.Reply { return reply(501, "5.7.0", "Authentication aborted") }

func replyBadBase64() smtp.Reply {
	return reply(501, "5.5.2", "Error: malformed base64 in AUTH response")
}

func replyUnknownMechanism() smtp.Reply {
	return reply(504, "5.5.4", "Unrecognized authentication type")
}

func replyEncryptionRequired() smtp.Reply {
	return reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
}

func replyAuthUnavailable() smtp.Reply {
	return reply(454, "4.7.0", "Temporary authentication failure")
}

// replyAuthBusy answers an AUTH from an address whose recent failures and
// checks in progress reach the lock-out limit.
func replyAuthBusy() smtp.Reply {
	return reply(454, "4.7.0", "Temporary authentication failure: too many attempts in progress, try again later")
}

// replyAuthLockedOut ends the session of a client address with too many
// recent authentication failures.
func replyAuthLockedOut(host string) smtp.Reply {
	return reply(421, "4.7.0", host+" Error: too many failed authentications, try again later")
}
