package deliver

import (
	"context"
	"sync"
	"time"
)

// pool holds idle connections per hop key and counts open connections
// (busy and idle) against each hop's limit.
type pool struct {
	mu          sync.Mutex
	hops        map[string]*hopConns
	idleTimeout time.Duration
	closed      bool
}

// hopConns are one hop key's connections.
type hopConns struct {
	open int
	idle []idleConn
	// wake is closed (and replaced) when a slot or idle connection frees
	// up, waking every waiter.
	wake chan struct{}
}

type idleConn struct {
	c     *Client
	timer *time.Timer
}

func newPool(idleTimeout time.Duration) *pool {
	return &pool{hops: make(map[string]*hopConns), idleTimeout: idleTimeout}
}

func (p *pool) hop(key string) *hopConns {
	h := p.hops[key]
	if h == nil {
		h = &hopConns{}
		p.hops[key] = h
	}
	return h
}

// signal wakes the waiters of h; p.mu must be held.
func (h *hopConns) signal() {
	if h.wake != nil {
		close(h.wake)
		h.wake = nil
	}
}

// get returns an idle connection for key, or nil with a slot reserved for
// a new connection the caller must open (and later put or drop). It waits
// while limit connections are open and none is idle.
func (p *pool) get(ctx context.Context, key string, limit int) (*Client, error) {
	for {
		p.mu.Lock()
		h := p.hop(key)
		if n := len(h.idle); n > 0 {
			ic := h.idle[n-1]
			h.idle = h.idle[:n-1]
			p.mu.Unlock()
			ic.timer.Stop()
			return ic.c, nil
		}
		if h.open < limit || limit <= 0 {
			h.open++
			p.mu.Unlock()
			return nil, nil
		}
		if h.wake == nil {
			h.wake = make(chan struct{})
		}
		wake := h.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// put returns a healthy connection to the idle list; it is closed with
// QUIT after the idle timeout unless taken again.
func (p *pool) put(key string, c *Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hop(key)
	if p.closed {
		h.open--
		go c.quitQuietly()
		return
	}
	var ic idleConn
	ic.c = c
	ic.timer = time.AfterFunc(p.idleTimeout, func() { p.expire(key, c) })
	h.idle = append(h.idle, ic)
	h.signal()
}

// expire closes an idle connection whose time is up, unless it was taken.
func (p *pool) expire(key string, c *Client) {
	p.mu.Lock()
	h := p.hop(key)
	for i, ic := range h.idle {
		if ic.c == c {
			h.idle = append(h.idle[:i], h.idle[i+1:]...)
			h.open--
			h.signal()
			p.mu.Unlock()
			c.quitQuietly()
			return
		}
	}
	p.mu.Unlock()
}

// drop releases the slot of a connection that was closed or never opened.
func (p *pool) drop(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hop(key)
	h.open--
	h.signal()
}

// closeAll ends every idle connection with QUIT and makes later puts close
// theirs.
func (p *pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	var idle []*Client
	for _, h := range p.hops {
		for _, ic := range h.idle {
			ic.timer.Stop()
			idle = append(idle, ic.c)
			h.open--
		}
		h.idle = nil
		h.signal()
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Go(c.quitQuietly)
	}
	wg.Wait()
}

// openConns returns how many connections are open for key (for tests).
func (p *pool) openConns(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hop(key).open
}
