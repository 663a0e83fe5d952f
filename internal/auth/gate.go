package auth

import (
	"errors"
	"fmt"
	"time"
)

// Checker checks a user's password; Users, File and Gated implement it
// (and so does smtpd.Authenticator's every implementation).
type Checker interface {
	// Authenticate reports whether password is user's; an error means the
	// check could not be made.
	Authenticate(user, password string) (bool, error)
}

// ErrBusy is returned when a password check waited for a free slot for the
// gate's whole wait time.
var ErrBusy = errors.New("auth: too many password checks in progress")

// Gate bounds how many password checks run at once. A check of an
// argon2id hash holds its memory parameter (64 MiB with the defaults) for
// its whole duration, so without a bound every parallel login adds that
// much memory. Checks beyond the bound wait for a slot, at most the gate's
// wait time, then fail with ErrBusy. One Gate is shared by every listener.
type Gate struct {
	slots chan struct{}
	wait  time.Duration
}

// NewGate returns a gate letting n checks run at once (at least 1) whose
// waiters give up after wait (at least 1ms).
func NewGate(n int, wait time.Duration) *Gate {
	return &Gate{slots: make(chan struct{}, max(n, 1)), wait: max(wait, time.Millisecond)}
}

// Wrap returns a Checker that runs c's checks through g.
func (g *Gate) Wrap(c Checker) *Gated { return &Gated{gate: g, c: c} }

// Gated is a Checker whose checks pass through a Gate.
type Gated struct {
	gate *Gate
	c    Checker
}

// Authenticate waits for a slot of the gate, then checks the password.
func (g *Gated) Authenticate(user, password string) (bool, error) {
	select {
	case g.gate.slots <- struct{}{}:
	default:
		t := time.NewTimer(g.gate.wait)
		select {
		case g.gate.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			return false, fmt.Errorf("%w: no slot within %v", ErrBusy, g.gate.wait)
		}
	}
	defer func() { <-g.gate.slots }()
	return g.c.Authenticate(user, password)
}
