package auth

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockingChecker counts checks in progress and holds each until released.
type blockingChecker struct {
	running, peak atomic.Int32
	release       chan struct{}
	started       chan struct{} // one value per check begun, when not nil
}

func (b *blockingChecker) Authenticate(user, password string) (bool, error) {
	n := b.running.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if b.started != nil {
		b.started <- struct{}{}
	}
	<-b.release
	b.running.Add(-1)
	return password == "right", nil
}

// TestGateBoundsConcurrentChecks: 50 parallel checks through a gate of 3
// never run more than 3 at once, and every one completes once slots free.
func TestGateBoundsConcurrentChecks(t *testing.T) {
	b := &blockingChecker{release: make(chan struct{})}
	g := NewGate(3, time.Minute).Wrap(b)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if good, err := g.Authenticate("u", "right"); good && err == nil {
				ok.Add(1)
			}
		}()
	}
	for range 50 {
		b.release <- struct{}{}
	}
	wg.Wait()
	if p := b.peak.Load(); p != 3 {
		t.Errorf("peak concurrent checks %d, want 3", p)
	}
	if ok.Load() != 50 {
		t.Errorf("%d of 50 checks succeeded", ok.Load())
	}
}

// TestGateWaitTimesOut: a check that finds no slot within the wait fails
// with ErrBusy and never reaches the checker.
func TestGateWaitTimesOut(t *testing.T) {
	b := &blockingChecker{release: make(chan struct{}), started: make(chan struct{}, 1)}
	gate := NewGate(1, 50*time.Millisecond)
	g := gate.Wrap(b)
	done := make(chan struct{})
	go func() { g.Authenticate("u", "right"); close(done) }()
	<-b.started // the first check holds the only slot
	if _, err := g.Authenticate("u", "right"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second check: err %v, want ErrBusy", err)
	}
	b.release <- struct{}{}
	<-done
	if p := b.peak.Load(); p != 1 {
		t.Errorf("peak %d, want 1", p)
	}
}
