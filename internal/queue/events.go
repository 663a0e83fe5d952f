package queue

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventDelayed: one recipient was deferred and will be retried.
	EventDelayed EventKind = iota + 1
	// EventFinished: every recipient of the message is final (sent or
	// failed, including expired and bounced by the administrator). It is
	// delivered before the done record is written, so after a crash it
	// may be delivered again (at least once); Event.Recovered is then set.
	EventFinished
)

// Event tells Config.OnEvent (the DSN stage) about a delay or a finished
// message. OnEvent runs synchronously in the goroutine that caused the event
// (a delivery worker's Update, a Lease that expired messages, an admin
// operation), outside the queue's lock; it may call Put.
type Event struct {
	Kind EventKind
	ID   string
	Env  *smtp.Envelope
	// Rcpts holds every recipient with its state and last reply; for
	// EventDelayed the deferred ones have state Deferred.
	Rcpts []RcptStatus
	// Rcpt is, for EventDelayed, the index of the recipient whose
	// deferral caused the event.
	Rcpt int
	// Body opens the stored body; valid until OnEvent returns.
	Body func() (io.ReadCloser, error)
	// Recovered is set when the event is delivered again at Open because
	// the process stopped before the message's done record was written.
	Recovered bool
	// Keep, set on EventFinished by a backend that can keep a finished
	// message, is called by OnEvent (before it returns, with a non-nil
	// error saying why) when the message's report could not be queued,
	// e.g. on a full spool: the message then stays queued with its
	// outcomes recorded, and the event is delivered again later (Retried
	// set) until OnEvent no longer calls Keep, so that the report is never
	// lost. Nil when the backend removes a finished message whatever
	// happens.
	Keep func(err error)
	// Retried is set when the event is delivered again after Keep.
	Retried bool
	// Reported, when set, reports whether the report named tag (e.g.
	// "delay:4h0m0s") was already made for this message, across every
	// node sharing the queue and restarts. PutReported queues such a
	// report (env and body, as PutReport would) and records tag in the
	// same commit, or returns ErrReported, storing nothing, when tag was
	// recorded first: so exactly one delay report goes out per message and
	// threshold, and a crash between the two cannot lose it. Both are nil
	// for a backend that keeps no such record; the DSN stage then
	// remembers in memory.
	Reported    func(tag string) (bool, error)
	PutReported func(ctx context.Context, tag string, env *smtp.Envelope, body io.Reader) (string, error)
}

// ErrReported is Event.PutReported finding its report already made.
var ErrReported = errors.New("queue: report already made for this message")

// RcptStatus is the state of one recipient as Show, Walk and events report
// it.
type RcptStatus struct {
	// Index is the recipient's index in Env.Rcpts.
	Index int
	Addr  smtp.Path
	// Hop is the next-hop key (lower-cased domain).
	Hop      string
	State    RcptState
	Attempts int
	// Next is the next attempt for a pending or deferred recipient.
	Next time.Time
	// LastReply, RemoteMTA and LastAttempt describe the latest attempt
	// (not filled in by Walk).
	LastReply   smtp.Reply
	RemoteMTA   string
	LastAttempt time.Time
	// Expired is set when the recipient failed because the message
	// outlived its lifetime.
	Expired bool
	// History lists every recorded attempt, oldest first (Show only).
	History []Attempt
	// LeasedBy names the node holding a lease on this recipient's work
	// (empty when none), with the lease's epoch and expiry.
	LeasedBy     string
	LeaseEpoch   uint64
	LeaseExpires time.Time
}

// Attempt is one recorded delivery attempt or administrative outcome.
type Attempt struct {
	At        time.Time
	State     RcptState
	Reply     smtp.Reply
	RemoteMTA string
	// Next is the retry time of a deferred attempt.
	Next    time.Time
	Expired bool
}

// MessageInfo describes one queued message for the admin API.
type MessageInfo struct {
	ID  string
	Env *smtp.Envelope
	// Size is the stored body size in octets.
	Size  int64
	Held  bool
	Rcpts []RcptStatus
	// Body opens the stored body while the message is queued.
	Body func() (io.ReadCloser, error)
}
