package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// SinkOptions configure a counting sink.
type SinkOptions struct {
	// Addr is the address to listen on; "" means "127.0.0.1:0".
	Addr string
	// Keywords are the EHLO keywords offered; nil means smtpd's default
	// set. Leave out "8BITMIME" to play a 7-bit next hop.
	Keywords []string
	// RunID is the run whose messages are counted; messages of other runs
	// (or without an X-Ferry-Bench field) count as foreign.
	RunID string
	// Messages is the size of the run: sequence numbers 0..Messages-1.
	Messages int
}

// Sink is a counting SMTP sink: it accepts every message, reads it to the
// end, counts it by its X-Ferry-Bench sequence number, and keeps nothing
// else. It is built on Ferry's own server engine (smtpd) with a store that
// discards. Its methods are safe for concurrent use.
type Sink struct {
	opts     SinkOptions
	srv      *smtpd.Server
	addr     string
	done     chan error
	seqs     []atomic.Uint32
	ids      atomic.Int64
	received atomic.Int64
	distinct atomic.Int64
	dups     atomic.Int64
	foreign  atomic.Int64
	eightBit atomic.Int64
	octets   atomic.Int64
	first    atomic.Int64 // UnixNano of the first counted message
	last     atomic.Int64 // UnixNano of the latest counted message
	bufs     sync.Pool

	mu      sync.Mutex
	waiters []sinkWaiter
}

// sinkWaiter is a Wait call waiting for n distinct messages.
type sinkWaiter struct {
	n  int64
	ch chan struct{}
}

// SinkStats is what a counting sink saw of one run.
type SinkStats struct {
	// Received counts this run's messages, duplicates included; Distinct
	// the distinct ones; Duplicates the extra copies.
	Received   int64 `json:"received"`
	Distinct   int64 `json:"distinct"`
	Duplicates int64 `json:"duplicates"`
	// Foreign counts messages of other runs or without the bench field.
	Foreign int64 `json:"foreign"`
	// EightBitWithout8BITMIME counts messages holding an octet above 127
	// that arrived without BODY=8BITMIME or BINARYMIME: a relay that sent
	// them to a hop without 8BITMIME broke RFC 6152 §3.
	EightBitWithout8BITMIME int64 `json:"eightbit_without_8bitmime"`
	// Octets is the content received, in octets.
	Octets int64 `json:"octets"`
	// First and Last are when the first and the latest of this run's
	// messages were received.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// StartSink starts a counting sink and serves until Close.
func StartSink(opts SinkOptions) (*Sink, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	cfg := smtpd.DefaultConfig()
	cfg.Hostname = "sink.bench.invalid"
	if opts.Keywords != nil {
		cfg.Keywords = opts.Keywords
	}
	cfg.OmitReceived = true
	cfg.MaxConnections, cfg.MaxConnectionsPerIP = 0, 0
	cfg.ForbidUnauthPipelining = false
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("counting sink: %w", err)
	}
	l, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("counting sink: %w", err)
	}
	s := &Sink{opts: opts, addr: l.Addr().String(), done: make(chan error, 1), seqs: make([]atomic.Uint32, max(opts.Messages, 0))}
	s.bufs.New = func() any { return bufio.NewReaderSize(nil, 32<<10) }
	s.srv = smtpd.New(cfg, countingStore{s}, nil)
	go func() { s.done <- s.srv.Serve(l) }()
	return s, nil
}

// Addr returns the address the sink listens on.
func (s *Sink) Addr() string { return s.addr }

// Stats returns the counts so far.
func (s *Sink) Stats() SinkStats {
	st := SinkStats{
		Received: s.received.Load(), Distinct: s.distinct.Load(), Duplicates: s.dups.Load(),
		Foreign: s.foreign.Load(), EightBitWithout8BITMIME: s.eightBit.Load(), Octets: s.octets.Load(),
	}
	if f := s.first.Load(); f != 0 {
		st.First = time.Unix(0, f)
	}
	if l := s.last.Load(); l != 0 {
		st.Last = time.Unix(0, l)
	}
	return st
}

// Missing counts the messages accepted[i] says were accepted upstream that
// the sink has not received.
func (s *Sink) Missing(accepted []bool) int {
	n := 0
	for i, a := range accepted {
		if a && (i >= len(s.seqs) || s.seqs[i].Load() == 0) {
			n++
		}
	}
	return n
}

// Unexpected counts the messages the sink received that accepted[i] says
// were not accepted upstream (a client that saw a failure for a message
// the relay nevertheless delivered).
func (s *Sink) Unexpected(accepted []bool) int {
	n := 0
	for i := range min(len(s.seqs), len(accepted)) {
		if s.seqs[i].Load() > 0 && !accepted[i] {
			n++
		}
	}
	return n
}

// Wait waits until n distinct messages of the run have arrived or ctx
// ends.
func (s *Sink) Wait(ctx context.Context, n int) error {
	s.mu.Lock()
	if s.distinct.Load() >= int64(n) {
		s.mu.Unlock()
		return nil
	}
	w := sinkWaiter{n: int64(n), ch: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("counting sink: %d of %d messages: %w", s.distinct.Load(), n, ctx.Err())
	}
}

// Close stops the sink, closing its sessions.
func (s *Sink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if err != nil {
		return fmt.Errorf("counting sink: %w", err)
	}
	return nil
}

// count records one received message.
func (s *Sink) count(runID string, seq int, octets int64, eightBit bool) {
	now := time.Now().UnixNano()
	s.octets.Add(octets)
	if eightBit {
		s.eightBit.Add(1)
	}
	if runID != s.opts.RunID || seq < 0 || seq >= len(s.seqs) {
		s.foreign.Add(1)
		return
	}
	s.received.Add(1)
	s.first.CompareAndSwap(0, now)
	for {
		l := s.last.Load()
		if now <= l || s.last.CompareAndSwap(l, now) {
			break
		}
	}
	if s.seqs[seq].Add(1) > 1 {
		s.dups.Add(1)
		return
	}
	d := s.distinct.Add(1)
	s.mu.Lock()
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if d >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	s.waiters = kept
	s.mu.Unlock()
}

// countingStore is the sink's smtpd.Store: it reads each message to the
// end, finds its X-Ferry-Bench field, and discards the content.
type countingStore struct{ s *Sink }

// NewID returns a fresh ID for smtpd's reply and log.
func (c countingStore) NewID() string {
	return "S" + strconv.FormatInt(c.s.ids.Add(1), 36)
}

// Put counts the message; it is "durable" at once, since nothing is kept.
func (c countingStore) Put(_ context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	br := c.s.bufs.Get().(*bufio.Reader)
	br.Reset(body)
	defer func() { br.Reset(nil); c.s.bufs.Put(br) }()
	scan8 := env.Body != smtp.Body8BitMIME && env.Body != smtp.BodyBinaryMIME
	runID, seq := "", -1
	var octets int64
	high := false
	inHeader, partial := true, false
	for {
		line, err := br.ReadSlice('\n')
		octets += int64(len(line))
		if scan8 && !high {
			high = hasHigh(line)
		}
		if inHeader && !partial {
			if len(line) <= 2 && (len(line) == 0 || line[0] == '\r' || line[0] == '\n') {
				inHeader = false
			} else if id, n, ok := parseBenchHeader(trimEOL(line)); ok && seq < 0 {
				runID, seq = id, n
			}
		}
		partial = err == bufio.ErrBufferFull // the rest of a long line follows
		if partial {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("counting sink: reading content: %w", err)
		}
	}
	c.s.count(runID, seq, octets, high)
	return env.ID, nil
}

// hasHigh reports whether b holds an octet above 127.
func hasHigh(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// trimEOL removes a trailing CRLF or LF.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
