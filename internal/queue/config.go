package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Config configures a queue. Zero fields take the values of DefaultConfig,
// except Dir, which is required.
type Config struct {
	// Dir is the spool directory holding the segment files.
	Dir string
	// Logger receives recovery reports and one line per queue event.
	Logger *slog.Logger
	// Node names this relay in leases ("ferry queue list"); default the
	// host name.
	Node string
	// Clock returns the current time; tests inject a fake clock.
	Clock func() time.Time
	// RetryInitial is the delay before the first retry of a deferred
	// recipient; each later retry doubles it up to RetryMax.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// Jitter spreads each retry delay d uniformly over
	// [d·(1-Jitter), d·(1+Jitter)]; 0 takes the default, a negative
	// value disables jitter.
	Jitter float64
	// Lifetime is how long a message is retried before its pending
	// recipients fail (RFC 5321 §4.5.4.1 suggests 4–5 days).
	Lifetime time.Duration
	// BounceLifetime replaces Lifetime for messages with the null sender.
	BounceLifetime time.Duration
	// LeaseTimeout is how long a lease may stay unreleased before its work
	// is taken back.
	LeaseTimeout time.Duration
	// HopConcurrency is the most leases one next hop may have at once.
	HopConcurrency int
	// LeaseMaxItems is the most messages one lease carries.
	LeaseMaxItems int
	// SegmentSize is the preallocated size of a segment file.
	SegmentSize int64
	// Reserve is the preallocated segment space kept for recipient state,
	// done and other small records when the spool fills: a new message is
	// refused (an error wrapping syscall.ENOSPC, which the server answers
	// with 452 4.3.1) rather than leave less than Reserve octets in the
	// active and the prepared next segment, so that deliveries can still
	// be recorded and finished messages removed. A spare segment is only
	// preallocated when the file system keeps Reserve octets free after
	// it. Zero means SegmentSize/16; it must be below SegmentSize/2.
	Reserve int64
	// GCInterval is how often segment collection runs.
	GCInterval time.Duration
	// CopyForwardLag is how many segments may follow the oldest one before
	// its remaining live messages are copied forward.
	CopyForwardLag int
	// CopyForwardBatch bounds the messages copied forward per collection
	// step.
	CopyForwardBatch int
	// MaxBufferedBytes bounds the message content that Put calls hold in
	// memory at once (a message is read whole before it is written); a Put
	// that would exceed it waits up to MemoryWait for others to finish,
	// then fails with ErrBusy. One message larger than the bound is still
	// received when it is alone.
	MaxBufferedBytes int64
	// MemoryWait is how long a Put waits for memory under
	// MaxBufferedBytes.
	MemoryWait time.Duration
	// OnEvent, when set, learns of delays and finished messages (for DSNs);
	// see Event.
	OnEvent func(Event)
	// Offline opens the spool for the administrator while no server runs
	// on it ("ferry queue" with the server stopped): messages that
	// recovery finds finished are left as they are, for the server to
	// report (DSNs) and remove at its next start, and segments are not
	// collected (the server does that when it runs again).
	Offline bool
	// OnCommit, when set, is called by the committer after every group
	// commit that reached stable storage (for metrics). It runs on the
	// committer's goroutine, between two commits: it must return at once
	// (update a counter or a histogram, nothing that blocks).
	OnCommit func(CommitStats)
}

// CommitStats describes one group commit: one write and one fdatasync
// covering the records of every request gathered.
type CommitStats struct {
	// Requests is the number of requests (one per Put, Update or other
	// queue operation) the commit carried: the group-commit batch size.
	Requests int
	// Records is the number of log records written.
	Records int
	// Bytes is the number of octets written.
	Bytes int
	// Sync is how long the fdatasync took.
	Sync time.Duration
}

// DefaultConfig returns the default configuration for a spool in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:              dir,
		Logger:           slog.Default(),
		Clock:            time.Now,
		RetryInitial:     5 * time.Minute,
		RetryMax:         time.Hour,
		Jitter:           0.1,
		Lifetime:         120 * time.Hour,
		BounceLifetime:   24 * time.Hour,
		LeaseTimeout:     10 * time.Minute,
		HopConcurrency:   4,
		LeaseMaxItems:    32,
		SegmentSize:      64 << 20,
		GCInterval:       time.Second,
		CopyForwardLag:   4,
		CopyForwardBatch: 256,
		MaxBufferedBytes: 512 << 20,
		MemoryWait:       time.Minute,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("queue: Config.Dir is required")
	}
	d := DefaultConfig(c.Dir)
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Node == "" {
		c.Node = DefaultNode()
	}
	c.Jitter = JitterOrDefault(c.Jitter, d.Jitter)
	OrDefault(&c.RetryInitial, d.RetryInitial)
	OrDefault(&c.RetryMax, d.RetryMax)
	OrDefault(&c.Lifetime, d.Lifetime)
	OrDefault(&c.BounceLifetime, d.BounceLifetime)
	OrDefault(&c.LeaseTimeout, d.LeaseTimeout)
	OrDefault(&c.HopConcurrency, d.HopConcurrency)
	OrDefault(&c.MaxBufferedBytes, d.MaxBufferedBytes)
	OrDefault(&c.MemoryWait, d.MemoryWait)
	OrDefault(&c.LeaseMaxItems, d.LeaseMaxItems)
	OrDefault(&c.SegmentSize, d.SegmentSize)
	if c.Reserve <= 0 {
		c.Reserve = c.SegmentSize / 16
	}
	if c.Reserve >= c.SegmentSize/2 {
		return c, fmt.Errorf("queue: Config.Reserve (%d octets) must be less than half of SegmentSize (%d octets)", c.Reserve, c.SegmentSize)
	}
	OrDefault(&c.GCInterval, d.GCInterval)
	OrDefault(&c.CopyForwardLag, d.CopyForwardLag)
	OrDefault(&c.CopyForwardBatch, d.CopyForwardBatch)
	return c, nil
}

// DefaultNode returns the default node name of a relay: its host name, or
// "localhost" when the system has none.
func DefaultNode() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
