package queue

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// ErrLeaseLost is returned by Update when the lease the outcome was
// delivered under is no longer the one that holds the recipient's work: it
// was taken back after its expiry and leased again (to another worker or
// another node), so the outcome that worker records wins. A worker that gets
// it stops delivering that lease.
var ErrLeaseLost = errors.New("queue: lease was taken over")

// Store is the queue contract: everything the rest of Ferry needs of a queue,
// whichever backend keeps it (the embedded segment log of this package, or
// the shared PostgreSQL queue of package pgqueue). smtpd uses Intake,
// deliver uses Scheduler, the admin API uses Operator and Stats; the DSN
// stage and the mail log learn of delays and finished messages from the
// backend's OnEvent callback (see Event). Every method is safe for
// concurrent use.
type Store interface {
	Intake
	Scheduler
	Operator
	// Stats returns counters and sizes for metrics.
	Stats() Stats
	// Writable reports whether the queue takes new mail and records now:
	// nil when it does, else why not. It is meant for a readiness check.
	Writable() error
	// Close stops the queue after pending writes are committed. Leases
	// still out are abandoned; their work becomes due again when they
	// expire (shared backend) or at the next start (segment log).
	Close() error
}

// Intake is what the SMTP server needs: IDs and durable Put.
type Intake interface {
	// NewID returns a fresh queue ID: short, sortable by time, unique.
	NewID() string
	// Put stores a message durably and schedules its recipients; it returns
	// only once the message is on stable storage (committed), so the
	// server may then answer 250. env.ID is used as the queue ID (one is
	// assigned when empty) and env.Arrival is set when zero. Put reads body
	// to its end on every path. A returned error means nothing was stored.
	Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error)
}

// Scheduler is what delivery needs: leases of due work by next-hop key,
// renewal, outcomes fenced by the lease, and release.
type Scheduler interface {
	// Lease blocks until due work exists for a next hop that has room for
	// another lease (HopConcurrency, across every node sharing the queue),
	// or ctx is done. A nil lease with a nil error means none is due yet.
	Lease(ctx context.Context) (*Lease, error)
	// Renew extends a lease by the lease timeout; false means it was taken
	// back already and the caller must stop delivering it.
	Renew(l *Lease) bool
	// Update records the outcome of one attempt for recipient rcpt of
	// message id, delivered under lease l. It is refused with ErrLeaseLost
	// when the work was leased again since l (its epoch is stale); a nil l
	// records the outcome unconditionally (tests and tools only).
	Update(ctx context.Context, l *Lease, id string, rcpt int, r Result) error
	// Release ends a lease: recipients not reported are due again at once.
	// Releasing a lease that was taken back is harmless.
	Release(l *Lease)
}

// Operator is what the admin API and "ferry queue" need.
type Operator interface {
	// Resolve returns the one queued message ID that starts with prefix.
	Resolve(prefix string) (string, error)
	// Walk calls fn for every queued message matching f, in ID order,
	// until fn returns false. Rcpts carry no replies or history.
	Walk(f Filter, fn func(*MessageInfo) bool) error
	// Show returns one message with its envelope and every recipient's
	// state, last reply and attempt history.
	Show(id string) (*MessageInfo, error)
	// Hold stops delivery of a message until Unhold.
	Hold(ctx context.Context, id string) error
	// Unhold releases a held message.
	Unhold(ctx context.Context, id string) error
	// RetryNow makes every pending recipient of a message due at once.
	RetryNow(ctx context.Context, id string) error
	// RetryHop makes every message with a pending recipient for hop due at
	// once and returns how many it touched.
	RetryHop(ctx context.Context, hop string) (int, error)
	// Delete removes a message without notice to anyone (no DSN).
	Delete(ctx context.Context, id string) error
	// BounceNow fails every pending recipient with 5.0.0; the message then
	// finishes and its sender gets a DSN.
	BounceNow(ctx context.Context, id string) error
}

// The segment log implements the contract.
var _ Store = (*Queue)(nil)

// Shared is implemented by a queue that several relays (nodes) share. Its
// totals are the whole cluster's, read from the shared store, and the same
// on every node; metrics export them apart from a node's own figures.
type Shared interface {
	// Node returns the name this relay records in its leases.
	Node() string
	// SharedStats returns the shared queue's totals. They are read from the
	// store at most once per few seconds (cached), with a short timeout; an
	// error means they could not be read now.
	SharedStats() (SharedStats, error)
}

// SharedStats are the totals of a shared queue at one moment.
type SharedStats struct {
	// Messages is the number of queued messages: Active + Deferred + Held.
	// A held message counts as held only; a message with a deferred
	// recipient as deferred; the rest are active.
	Messages, Active, Deferred, Held int
	// PendingRcpts and DeferredRcpts count the recipients still to deliver.
	PendingRcpts, DeferredRcpts int
	// Bytes is the stored size of every queued message.
	Bytes int64
	// Oldest is the arrival time of the oldest message (zero when empty).
	Oldest time.Time
	// Leases are the leases recorded per node, by node name.
	Leases []NodeLeases
	// Read is when the figures were read from the store.
	Read time.Time
}

// NodeLeases counts one node's leases in a shared queue: Live ones, and
// Expired ones (a node that stopped heartbeating or paused), whose records
// stay until their next hop is leased again.
type NodeLeases struct {
	Node          string
	Live, Expired int
}
