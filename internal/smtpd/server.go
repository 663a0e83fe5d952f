// Package smtpd is Ferry's inbound SMTP server: listener, per-connection
// session state machine, per-phase idle timeouts, configurable EHLO keywords,
// limits and access-policy hooks. Accepted messages are streamed into a
// Store, and 250 is sent only once the Store says the message is durable.
package smtpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("smtpd: server closed")

// Server is an SMTP server. Create it with New; it may serve several
// listeners at once.
type Server struct {
	cfg    Config
	ext    extensions
	store  Store
	policy Policy
	bufs   bufferPool

	// authLimit counts failed authentications per client address.
	authLimit *authLimiter

	// ctx is passed to Store.Put; it ends when Shutdown gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	sessionPrefix string
	sessionSeq    atomic.Uint64

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*idleConn]struct{}
	perIP     map[string]int
	active    sync.WaitGroup
}

// New returns a server with the given configuration, store and policy (nil:
// AcceptAll). Zero limits and timeouts in cfg take DefaultConfig's values;
// Serve reports an invalid configuration.
func New(cfg Config, store Store, policy Policy) *Server {
	if policy == nil {
		policy = AcceptAll{}
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		ctx:           ctx,
		cancel:        cancel,
		cfg:           cfg,
		ext:           parseKeywords(cfg.Keywords, cfg.MaxMessageSize),
		store:         store,
		policy:        policy,
		authLimit:     newAuthLimiter(cfg.AuthMaxFailures, cfg.AuthLockoutWindow),
		sessionPrefix: strconv.FormatInt(time.Now().UnixMilli()%(36*36*36*36*36), 36),
		listeners:     map[net.Listener]struct{}{},
		conns:         map[*idleConn]struct{}{},
		perIP:         map[string]int{},
	}
}

// ListenAndServe listens on the TCP address addr and serves it.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("smtpd: listen: %w", err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l and runs a session for each until Shutdown
// is called (then it returns ErrServerClosed) or accepting fails. It closes l.
func (s *Server) Serve(l net.Listener) error {
	if err := s.cfg.Validate(); err != nil {
		l.Close()
		return err
	}
	if s.store == nil {
		l.Close()
		return errors.New("smtpd: no store")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("smtpd: accept: %w", err)
		}
		backoff = 0
		s.admit(c)
	}
}

// trusted reports whether a client may use the reserved connections and
// skips the pregreet wait: Config.Trusted says so, or its address
// authenticated successfully within the last hour.
func (s *Server) trusted(remote net.Addr, ip string) bool {
	return (s.cfg.Trusted != nil && s.cfg.Trusted(remote)) || s.authLimit.authenticatedRecently(ip, time.Now())
}

// admit starts a session for c, or refuses it with 421 4.7.0 when a
// connection limit is reached. Clients that are not trusted find the limit
// ReservedConnections lower.
func (s *Server) admit(c net.Conn) {
	ip := remoteIP(c.RemoteAddr())
	trusted := s.trusted(c.RemoteAddr(), ip)
	ic := &idleConn{Conn: c, readTimeout: s.cfg.Timeouts.Greeting, writeTimeout: s.cfg.Timeouts.Write, trusted: trusted, ip: ip}
	limit := s.cfg.MaxConnections
	if !trusted {
		limit -= s.cfg.ReservedConnections
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	over := (s.cfg.MaxConnections > 0 && len(s.conns) >= limit) ||
		(s.cfg.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnectionsPerIP)
	s.active.Add(1)
	if !over {
		s.conns[ic] = struct{}{}
		s.perIP[ip]++
	}
	s.mu.Unlock()
	if over {
		go func() {
			defer s.active.Done()
			s.refuse(ic, replyTooManyConns(s.cfg.Hostname))
		}()
		return
	}
	go func() {
		defer s.active.Done()
		defer s.release(ic)
		s.runSession(ic)
	}()
}

// refuse sends r instead of the greeting and closes the connection. On an
// implicit TLS listener it just closes: a plaintext reply would not be
// understood, and a handshake is what an overloaded server cannot afford.
func (s *Server) refuse(c *idleConn, r smtp.Reply) {
	if !s.cfg.ImplicitTLS {
		c.Write(r.Format(s.ext.enhanced))
	}
	c.Close()
}

// release frees c's connection slot, then closes it: a client that sees
// the close and connects again finds the slot free.
func (s *Server) release(c *idleConn) {
	s.freeSlot(c)
	c.Close()
}

// freeSlot gives c's connection slot back, once. A session calls it before
// its reply to QUIT, so that a client that reconnects as soon as it reads
// the 221 (one message per connection, as load generators and many
// applications send) finds the slot free instead of a 421.
func (s *Server) freeSlot(c *idleConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.slotFreed {
		return
	}
	c.slotFreed = true
	delete(s.conns, c)
	if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
		delete(s.perIP, c.ip)
	}
}

// Shutdown stops accepting connections, closes idle sessions with 421, lets
// transactions in progress finish, and returns when every session has ended.
// When ctx ends first, the remaining connections are closed and ctx's error
// is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.interrupt()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return fmt.Errorf("smtpd: shutdown: %w", ctx.Err())
	}
}

// remoteIP returns the IP address of a client address, or its string form.
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// newSessionID returns a short unique session ID for logs.
func (s *Server) newSessionID() string {
	return s.sessionPrefix + "-" + strconv.FormatUint(s.sessionSeq.Add(1), 36)
}
