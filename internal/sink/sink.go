// Package sink is an SMTP server that plays any next hop, for tests and for
// "ferry sink": chosen EHLO keywords (such as a Domino R5 without 8BITMIME),
// no ESMTP at all, a small SIZE, scripted replies, strict 7-bit checking,
// and capture of every message, byte for byte, in memory and optionally to a
// directory as ID.eml with an ID.json sidecar (see Sidecar).
//
// A test starts one with Start, points the code under test at Addr, waits
// with Wait and inspects Messages; Close stops it. All methods are safe for
// concurrent use.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// Options configure a sink. The zero value is a sink on 127.0.0.1 (a free
// port) with smtpd's default EHLO keywords, capturing in memory only.
type Options struct {
	// Addr is the TCP address to listen on; "" means "127.0.0.1:0".
	Addr string
	// Hostname is the name in the greeting and EHLO reply; "" means
	// "sink.test".
	Hostname string
	// Keywords are the EHLO keywords offered, in order, replacing the
	// default set (smtpd.DefaultConfig's); nil means the default set and an
	// empty non-nil slice none. Unknown keywords (e.g. "HELP") are offered
	// verbatim.
	Keywords []string
	// NoESMTP answers EHLO with 502: only HELO works.
	NoESMTP bool
	// MaxSize is the SIZE limit in octets; 0: none, or n when Keywords
	// holds "SIZE n".
	MaxSize int64
	// MaxRecipients is the recipient limit per message (at least 100); 0:
	// 1000.
	MaxRecipients int
	// Rules are scripted replies, tried in order.
	Rules []Rule
	// Strict7Bit rejects a message containing an octet above 127 unless it
	// was sent with BODY=8BITMIME or BODY=BINARYMIME, with 554 5.6.0, as a
	// 7-bit-only hop may.
	Strict7Bit bool
	// BareNewline is the policy for bare CR or LF in DATA content.
	BareNewline smtp.BarePolicy
	// LenientPipelining accepts commands sent ahead where RFC 2920 forbids
	// it, instead of closing the session as Postfix does.
	LenientPipelining bool
	// Dir, when set, receives ID.eml and ID.json for each message.
	Dir string
	// TranscriptDir, when set, receives a transcript of each session.
	TranscriptDir string
	// TLSCert is a PEM certificate chain file; with TLSKey the sink offers
	// STARTTLS (RFC 3207), as a next hop with TLS does. Empty: no TLS.
	TLSCert string
	// TLSKey is the PEM private key file of TLSCert.
	TLSKey string
	// Logger receives smtpd's mail log; nil discards it.
	Logger *slog.Logger
	// Delay is how long the sink waits after keeping a message before it
	// answers 250: a slow next hop, whose client may go away in between
	// (the message is then kept although the client never heard so).
	Delay time.Duration
}

// Message is one message the sink accepted.
type Message struct {
	// ID is the sink's queue ID, also the capture's file name.
	ID string
	// Envelope is the envelope as the sink's server parsed it.
	Envelope smtp.Envelope
	// MailLine and RcptLines are the MAIL and accepted RCPT command lines
	// as received.
	MailLine  string
	RcptLines []string
	// Chunked is set when the content came with BDAT.
	Chunked bool
	// Data is the content exactly as received after dot-unstuffing (no
	// Received field is added).
	Data []byte
}

// Sink is a running SMTP sink.
type Sink struct {
	opts  Options
	srv   *smtpd.Server
	addr  string
	rules []*ruleState
	done  chan error

	closeOnce sync.Once
	closeErr  error

	conns   atomic.Int64
	idPref  string
	idSeq   atomic.Int64
	mu      sync.Mutex
	msgs    []Message
	changed chan struct{} // closed and replaced when msgs grows
}

// Start listens and serves until Close.
func Start(opts Options) (*Sink, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Hostname == "" {
		opts.Hostname = "sink.test"
	}
	cfg := smtpd.DefaultConfig()
	cfg.Hostname = opts.Hostname
	if opts.Keywords != nil {
		cfg.Keywords = opts.Keywords
	}
	cfg.NoESMTP = opts.NoESMTP
	cfg.OmitReceived = true
	cfg.MaxMessageSize = opts.MaxSize
	cfg.MaxRecipients = opts.MaxRecipients
	cfg.BareNewline = opts.BareNewline
	cfg.ForbidUnauthPipelining = !opts.LenientPipelining
	cfg.MaxConnections, cfg.MaxConnectionsPerIP = 0, 0
	cfg.TranscriptDir = opts.TranscriptDir
	cfg.Logger = opts.Logger
	if opts.TLSCert != "" || opts.TLSKey != "" {
		if opts.TLSCert == "" || opts.TLSKey == "" {
			return nil, errors.New("sink: want a TLS certificate and key together, got only one")
		}
		cs, err := smtpd.NewCertStore(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("sink: loading TLS certificate %s and key %s: %w", opts.TLSCert, opts.TLSKey, err)
		}
		cfg.TLS = cs.TLSConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Sink{
		opts:    opts,
		changed: make(chan struct{}),
		done:    make(chan error, 1),
		idPref:  strconv.FormatInt(time.Now().UnixMilli(), 36),
	}
	for _, r := range opts.Rules {
		s.rules = append(s.rules, &ruleState{Rule: r})
	}
	l, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s.addr = l.Addr().String()
	s.srv = smtpd.New(cfg, captureStore{s}, policy{s})
	go func() { s.done <- s.srv.Serve(l) }()
	return s, nil
}

// Addr returns the address the sink listens on, "127.0.0.1:port".
func (s *Sink) Addr() string { return s.addr }

// Connections returns how many connections the sink has received.
func (s *Sink) Connections() int { return int(s.conns.Load()) }

// Messages returns the messages accepted so far, in order of acceptance.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait returns the messages once at least n have been accepted, or an error
// with the count so far when ctx ends first.
func (s *Sink) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			m := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return m, nil
		}
		ch, have := s.changed, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("sink: waiting for %d messages, have %d: %w", n, have, ctx.Err())
		}
	}
}

// Close stops the sink, letting transfers in progress finish for up to five
// seconds. Later calls return the first call's result.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if serr := <-s.done; !errors.Is(serr, smtpd.ErrServerClosed) && err == nil {
			err = serr
		}
		if err != nil {
			s.closeErr = fmt.Errorf("sink: close: %w", err)
		}
	})
	return s.closeErr
}

// add records an accepted message and wakes waiters.
func (s *Sink) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// policy applies the sink's CONNECT, MAIL, RCPT and DATA rules.
type policy struct{ s *Sink }

// Connect counts the connection and applies CONNECT rules.
func (p policy) Connect(net.Addr) *smtp.Reply {
	p.s.conns.Add(1)
	return answer(p.s.rules, StageConnect, "")
}

// Mail applies MAIL rules to the reverse path.
func (p policy) Mail(_ smtpd.SessionInfo, from smtp.Path, _ smtp.Params) *smtpd.Refusal {
	return smtpd.Refuse(answer(p.s.rules, StageMail, subject(from)))
}

// Rcpt applies RCPT rules to the forward path.
func (p policy) Rcpt(_ smtpd.SessionInfo, to smtp.Path, _ smtp.Params) *smtpd.Refusal {
	return smtpd.Refuse(answer(p.s.rules, StageRcpt, subject(to)))
}

// Data applies DATA rules to the sender and the recipients.
func (p policy) Data(_ smtpd.SessionInfo, env *smtp.Envelope) *smtpd.Refusal {
	return smtpd.Refuse(answer(p.s.rules, StageData, subjects(env)...))
}

// subject is the text a rule pattern is matched against.
func subject(p smtp.Path) string {
	if p.IsNull() {
		return "<>"
	}
	if p.Domain == "" {
		return p.LocalPart
	}
	return p.LocalPart + "@" + p.Domain
}

func subjects(env *smtp.Envelope) []string {
	s := []string{subject(env.From)}
	for _, r := range env.Rcpts {
		s = append(s, subject(r.Addr))
	}
	return s
}
