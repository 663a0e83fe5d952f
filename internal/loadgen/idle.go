package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// IdleSessions is a set of SMTP sessions opened, greeted and left idle after
// EHLO, to measure what a server spends on each session it holds.
type IdleSessions struct {
	conns []net.Conn
	// Failed counts sessions that could not be opened or greeted.
	Failed int
	// FirstError is the first failure, or nil.
	FirstError error
}

// Held returns the number of sessions held open.
func (s *IdleSessions) Held() int { return len(s.conns) }

// OpenIdle opens n sessions to target, with at most parallel of them being
// set up at once: each connects, reads the greeting, sends EHLO, reads the
// reply, and then stays idle. It stops at ctx's end; every step is bounded
// by ioTimeout.
func OpenIdle(ctx context.Context, target string, n, parallel int, ioTimeout time.Duration) *IdleSessions {
	s := &IdleSessions{}
	var mu sync.Mutex
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := openIdle(ctx, target, ioTimeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.Failed++
				if s.FirstError == nil {
					s.FirstError = err
				}
				return
			}
			s.conns = append(s.conns, c)
		}()
	}
	wg.Wait()
	return s
}

// openIdle opens one session up to the EHLO reply.
func openIdle(ctx context.Context, target string, ioTimeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: ioTimeout}
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("idle session: %w", err)
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReaderSize(c, 512)
	g, err := smtp.ReadReply(br)
	if err == nil && g.Code != 220 {
		err = fmt.Errorf("greeting %s", g)
	}
	if err == nil {
		_, err = c.Write([]byte("EHLO idle.bench.example\r\n"))
	}
	if err == nil {
		var e smtp.Reply
		if e, err = smtp.ReadReply(br); err == nil && e.Code != 250 {
			err = fmt.Errorf("EHLO: %s", e)
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("idle session: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// Close closes every held session (without QUIT: the point is the server's
// cost of idle sessions, not a polite goodbye).
func (s *IdleSessions) Close() {
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}
