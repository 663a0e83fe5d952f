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
	return &authLimiter{max: max, window: window, failures: map[string][]time.Time{}, good: map[string]time.Time{}}
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

// attempt counts a credential check of ip at now before it is made, so
// that parallel checks from one address count towards its lock-out while
// they run (a failure is then already counted). It returns false, counting
// nothing, when ip is locked out. A check that succeeds, or that could not
// be made, is taken back with forgive.
func (l *authLimiter) attempt(ip string, now time.Time) bool {
	if l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	if l.recent(ip, now) >= l.max {
		return false
	}
	l.failures[ip] = append(l.failures[ip], now)
	return true
}

// forgive takes back the attempt counted for ip at at.
func (l *authLimiter) forgive(ip string, at time.Time) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.failures[ip]
	for i := len(times) - 1; i >= 0; i-- {
		if times[i].Equal(at) {
			times = append(times[:i:i], times[i+1:]...)
			break
		}
	}
	if len(times) == 0 {
		delete(l.failures, ip)
		return
	}
	l.failures[ip] = times
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

// replyAuthLockedOut ends the session of a client address with too many
// recent authentication failures.
func replyAuthLockedOut(host string) smtp.Reply {
	return reply(421, "4.7.0", host+" Error: too many failed authentications, try again later")
}
