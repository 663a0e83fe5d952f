// Package queue is Ferry's durable message store and delivery scheduler: an
// append-only segment log written with group commit (one fdatasync for many
// sessions' messages), an in-memory index rebuilt at start, per-recipient
// state with retries, backoff and expiry, and leases of due work grouped by
// next hop. See docs/queue-format.md for the on-disk format.
package queue

import (
	"io"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// RcptState is the delivery state of one recipient.
type RcptState uint8

// Recipient states. Pending recipients are due at their NextAttempt; Sent and
// Failed are final.
const (
	Pending RcptState = iota
	Sent
	Failed
	Deferred // a transient failure: retried after the queue's backoff delay
)

// Result is the outcome of one delivery attempt for one recipient, as
// reported by deliver.
type Result struct {
	State RcptState // Sent, Deferred or Failed
	Reply smtp.Reply
	// RemoteMTA is the next hop that gave the reply, "host[ip]:port", or ""
	// when no connection was made.
	RemoteMTA string
	// At is when the attempt ended.
	At time.Time
}

// Lease is due work handed to one delivery worker: messages whose pending
// recipients share one next-hop key (the lower-cased recipient domain). It
// must be ended with Release; recipients not reported by then return to the
// queue as due at once.
type Lease struct {
	// Hop is the next-hop key: the recipients' domain, lower case.
	Hop   string
	Items []Item
	// Expires is when an unreleased lease is taken back.
	Expires time.Time
	// Epoch is the lease's fencing token: it grows with every lease the
	// queue hands out, and Update refuses an outcome whose lease's epoch
	// is no longer the one its work was last leased under.
	Epoch uint64
	// Node names the relay holding the lease (for "ferry queue list").
	Node string
	id   uint64
}

// Item is one message in a lease with the recipients to attempt.
type Item struct {
	Env *smtp.Envelope
	// Rcpts are indexes into Env.Rcpts of the recipients to attempt now.
	Rcpts []int
	// Attempts is how many attempts were made before this one.
	Attempts int
	// Size is the stored body size in octets.
	Size int64
	// Body opens the stored body (including Ferry's Received field).
	Body func() (io.ReadCloser, error)
	// Lease is the lease the item came in; pass it to Update.
	Lease *Lease
}
