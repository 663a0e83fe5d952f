package queue

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMemBudget(t *testing.T) {
	b := NewMemBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.acquire(ctx, 50, 20*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Fatalf("over the budget: %v, want ErrBusy", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.acquire(ctx, 50, time.Minute) }()
	waitCond(t, "the second acquire to wait", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.waiting == 1
	})
	b.Release(60)
	if err := <-done; err != nil {
		t.Fatalf("after a release: %v", err)
	}
	b.Release(50)
	// Alone, a request larger than the whole budget is granted.
	if err := b.acquire(ctx, 500, time.Second); err != nil {
		t.Fatalf("alone and larger than the budget: %v", err)
	}
	b.Release(500)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.acquire(ctx, 80, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.acquire(cctx, 80, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// slowBody yields its first octets, then blocks until released.
type slowBody struct {
	first   string
	release chan struct{}
	blocked chan struct{} // closed when Read has returned first and waits
	once    sync.Once
}

func (s *slowBody) Read(p []byte) (int, error) {
	if len(s.first) > 0 {
		n := copy(p, s.first)
		s.first = s.first[n:]
		return n, nil
	}
	s.once.Do(func() { close(s.blocked) })
	<-s.release
	return 0, io.EOF
}

// TestPutMemoryBound: while one large transfer holds the memory budget, a
// second Put waits, then fails with ErrBusy after MemoryWait with its body
// read to the end; nothing earlier is lost and Put works again afterwards.
func TestPutMemoryBound(t *testing.T) {
	q := schedQueue(t, t.TempDir(), newFakeClock(), func(c *Config) {
		c.MaxBufferedBytes = 64 << 10
		c.MemoryWait = 100 * time.Millisecond
	})
	defer q.Close()
	big := &slowBody{first: strings.Repeat("x", 60<<10), release: make(chan struct{}), blocked: make(chan struct{})}
	firstDone := make(chan error, 1)
	go func() {
		_, err := q.Put(context.Background(), testEnv("a@example.org", "b@example.com"), big)
		firstDone <- err
	}()
	<-big.blocked // the first Put holds most of the budget
	second := strings.NewReader("Subject: x\r\n\r\n" + strings.Repeat("y", 32<<10))
	_, err := q.Put(context.Background(), testEnv("c@example.org", "d@example.com"), second)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second Put: %v, want ErrBusy", err)
	}
	if n := strings.Count(err.Error(), "queue:"); n != 1 {
		t.Errorf("error %q carries the package prefix %d times, want once", err, n)
	}
	if second.Len() != 0 {
		t.Errorf("the refused body was not read to its end (%d octets left)", second.Len())
	}
	close(big.release)
	if err := <-firstDone; err != nil {
		t.Fatalf("first Put: %v", err)
	}
	if _, err := q.Put(context.Background(), testEnv("e@example.org", "f@example.com"), strings.NewReader("Subject: y\r\n\r\nz\r\n")); err != nil {
		t.Fatalf("Put after memory was freed: %v", err)
	}
}
