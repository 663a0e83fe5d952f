// Package pgqueue is the shared queue backend: the queue contract
// (queue.Store) kept in PostgreSQL, so that several relays share one queue
// and no accepted message waits on a dead node. Puts from many sessions are
// gathered into one transaction (group commit) and answered only after
// COMMIT; due work is claimed with FOR UPDATE SKIP LOCKED under leases that
// carry a fencing epoch, renewed by heartbeats and taken over by another
// node when they expire; LISTEN/NOTIFY wakes idle nodes. See
// docs/queue-postgres.md.
package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrymta/ferry/internal/queue"
)

// Config configures a shared queue. Zero fields take the defaults named.
type Config struct {
	// URL is the PostgreSQL connection URL ("postgres://user:pass@host/db")
	// or key=value string. Required.
	URL string
	// Node names this relay in leases and attempts; default the host name.
	Node string
	// Logger receives queue events; default slog.Default().
	Logger *slog.Logger
	// RetryInitial, RetryMax and Jitter make the retry schedule, as for the
	// segment log (queue.Config); defaults 5m, 1h, 0.1 (negative: none).
	RetryInitial time.Duration
	RetryMax     time.Duration
	Jitter       float64
	// Lifetime and BounceLifetime are how long a message (one with the null
	// sender) is retried; defaults 120h and 24h.
	Lifetime       time.Duration
	BounceLifetime time.Duration
	// LeaseTimeout is how long a lease lasts without a heartbeat: a dead
	// node's work is taken over this long after its last one; default 30s.
	LeaseTimeout time.Duration
	// Heartbeat is how often the node renews every lease it holds; default
	// a third of LeaseTimeout; negative: never (leases then last only as
	// long as Renew keeps them, as in the segment log).
	Heartbeat time.Duration
	// HopConcurrency is the most leases one next hop may have at once
	// across every node; default 4. HopLimit, when set, gives the limit of
	// each hop instead (route max_connections).
	HopConcurrency int
	HopLimit       func(hop string) int
	// LeaseMaxItems is the most messages one lease carries; default 32.
	LeaseMaxItems int
	// MaxConns is the connection pool's size; default 32. A delivery
	// worker recording a message's last outcome holds one while the DSN
	// stage queues its report (which needs another): allow more than the
	// delivery workers.
	MaxConns int32
	// BatchMax is the most Puts one group commit carries; default 256.
	BatchMax int
	// Committers is the number of group commits in flight at once; default 2
	// (one is executed while the other waits for its COMMIT's WAL flush).
	Committers int
	// ConnectTimeout bounds the first connection at Open; default 10s.
	ConnectTimeout time.Duration
	// OpTimeout bounds one database operation (a Put's commit, an Update);
	// default 30s.
	OpTimeout time.Duration
	// MaxBufferedBytes bounds the message content Put calls hold in memory
	// at once; a Put that would exceed it waits up to MemoryWait, then fails
	// with queue.ErrBusy (451). Defaults 512 MiB and one minute, as for the
	// segment log.
	MaxBufferedBytes int64
	MemoryWait       time.Duration
	// StatsInterval is how long SharedStats keeps the totals it read
	// before reading them again; default 5s.
	StatsInterval time.Duration
	// OnEvent learns of delays and finished messages (the DSN stage).
	OnEvent func(queue.Event)
	// OnCommit is called after every group commit of Puts (for metrics);
	// Sync is how long the COMMIT took.
	OnCommit func(queue.CommitStats)
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.Node == "" {
		c.Node = queue.DefaultNode()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	queue.OrDefault(&c.RetryInitial, 5*time.Minute)
	queue.OrDefault(&c.RetryMax, time.Hour)
	queue.OrDefault(&c.Lifetime, 120*time.Hour)
	queue.OrDefault(&c.BounceLifetime, 24*time.Hour)
	queue.OrDefault(&c.LeaseTimeout, 30*time.Second)
	if c.Heartbeat == 0 {
		c.Heartbeat = c.LeaseTimeout / 3
	}
	queue.OrDefault(&c.ConnectTimeout, 10*time.Second)
	queue.OrDefault(&c.OpTimeout, 30*time.Second)
	c.Jitter = queue.JitterOrDefault(c.Jitter, 0.1)
	queue.OrDefault(&c.HopConcurrency, 4)
	queue.OrDefault(&c.LeaseMaxItems, 32)
	queue.OrDefault(&c.MaxConns, 32)
	queue.OrDefault(&c.BatchMax, 256)
	queue.OrDefault(&c.Committers, 2)
	queue.OrDefault(&c.MaxBufferedBytes, 512<<20)
	queue.OrDefault(&c.MemoryWait, time.Minute)
	queue.OrDefault(&c.StatsInterval, 5*time.Second)
	return c
}

// notifyChannel is the LISTEN/NOTIFY channel that says work may be due.
const notifyChannel = "ferry_queue"

// Queue is the shared queue. Its methods are safe for concurrent use.
type Queue struct {
	cfg   Config
	log   *slog.Logger
	pool  *pgxpool.Pool
	ids   *queue.IDGen
	where string // "host:port/database" for messages, never the password

	puts   chan *putReq
	sendMu sync.RWMutex
	mem    *queue.MemBudget

	putNotify chan struct{} // a NOTIFY of committed Puts is due (notify.go)
	owedKick  chan struct{} // a report was just kept: retry soon (owed.go)

	mu     sync.Mutex
	closed bool
	wake   chan struct{} // closed and replaced on NOTIFY
	leases map[uint64]*leaseState
	// gen counts wake-ups; idleGen and idleUntil record the last probe for
	// due work that found none (idleSet), see Lease.
	gen       uint64
	idleSet   bool
	idleGen   uint64
	idleUntil time.Time

	probe  chan struct{} // holds a token while a worker probes for work
	probes atomic.Int64  // probes run (for tests)

	statsMu  sync.Mutex // one read of SharedStats at a time
	statsAt  time.Time  // when stats were last read (or tried)
	stats    queue.SharedStats
	statsErr error

	stop   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open connects to the database, applies the schema's migrations and starts
// the committers, the listener and the heartbeat. An unusable URL or an
// unreachable server is an error naming the server, never the password.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	if cfg.URL == "" {
		return nil, errors.New("queue: url is required for the postgres backend")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("queue: url is not a PostgreSQL connection URL: %s", scrub(err.Error(), cfg.URL))
	}
	pc.MaxConns = cfg.MaxConns
	where := describe(pc.ConnConfig)
	cctx, cancelConnect := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancelConnect()
	pool, err := pgxpool.NewWithConfig(cctx, pc)
	if err != nil {
		return nil, fmt.Errorf("queue: PostgreSQL at %s: %s", where, scrub(err.Error(), cfg.URL))
	}
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: cannot connect to PostgreSQL at %s: %s", where, scrub(err.Error(), cfg.URL))
	}
	if applied, err := Migrate(cctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%w (PostgreSQL at %s)", err, where)
	} else if len(applied) > 0 {
		cfg.Logger.Info("queue: schema migrated", "db", where, "versions", fmt.Sprint(applied))
	}
	var tag int64
	if err := pool.QueryRow(cctx, "SELECT nextval('ferry_node_tag')").Scan(&tag); err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: PostgreSQL at %s: node tag: %w", where, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	q := &Queue{cfg: cfg, log: cfg.Logger, pool: pool, where: where,
		ids:    queue.NewIDGen(time.Now, uint64(tag)),
		puts:   make(chan *putReq, 4*cfg.BatchMax),
		mem:    queue.NewMemBudget(cfg.MaxBufferedBytes),
		wake:   make(chan struct{}),
		leases: make(map[uint64]*leaseState),
		probe:  make(chan struct{}, 1),
		stop:   make(chan struct{}), cancel: cancel,
		putNotify: make(chan struct{}, 1), owedKick: make(chan struct{}, 1)}
	q.startPuts()
	q.wg.Add(1)
	go func() { defer q.wg.Done(); q.listen(runCtx, pc.ConnConfig) }()
	if cfg.OnEvent != nil {
		q.wg.Add(1)
		go func() { defer q.wg.Done(); q.owedLoop(runCtx) }()
	}
	if cfg.Heartbeat > 0 {
		q.wg.Add(1)
		go func() { defer q.wg.Done(); q.heartbeat(runCtx) }()
	}
	cfg.Logger.Info("queue: shared queue open", "db", where, "node", cfg.Node, "lease_timeout", cfg.LeaseTimeout)
	return q, nil
}

// describe names the server of a connection configuration for messages.
func describe(c *pgx.ConnConfig) string {
	host := c.Host
	if !strings.HasPrefix(host, "/") {
		host = fmt.Sprintf("%s:%d", host, c.Port)
	}
	return fmt.Sprintf("%s (database %q, user %q)", host, c.Database, c.User)
}

// scrub removes the password of rawURL from msg, should a driver message
// quote it.
func scrub(msg, rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	for _, f := range strings.Fields(rawURL) {
		if v, ok := strings.CutPrefix(f, "password="); ok && v != "" {
			msg = strings.ReplaceAll(msg, v, "xxxxx")
		}
	}
	return msg
}

// Close stops the queue: no new work, pending Puts are committed, leases
// still out are abandoned (another node takes them over when they expire).
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.notifyLocked()
	q.mu.Unlock()
	q.sendMu.Lock() // every Put past its check has handed its request over
	q.sendMu.Unlock()
	close(q.stop)
	q.cancel()
	q.wg.Wait()
	q.pool.Close()
	return nil
}

// NewID returns a new queue ID; the tag part comes from the database, so
// nodes sharing the queue make different IDs.
func (q *Queue) NewID() string { return q.ids.Next() }

// Node returns the node name this queue records in leases.
func (q *Queue) Node() string { return q.cfg.Node }

// notifyLocked wakes every goroutine waiting for work. Callers hold q.mu.
func (q *Queue) notifyLocked() {
	close(q.wake)
	q.wake = make(chan struct{})
	q.gen++
}

// wakeAll wakes every goroutine waiting for work.
func (q *Queue) wakeAll() {
	q.mu.Lock()
	q.notifyLocked()
	q.mu.Unlock()
}

// listen holds a connection that LISTENs for work notifications and wakes
// idle Lease calls, reconnecting after a failure.
func (q *Queue) listen(ctx context.Context, cc *pgx.ConnConfig) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cc.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
		}
		if err != nil {
			if conn != nil {
				conn.Close(context.Background())
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		q.wakeAll() // work may have arrived while not listening
		for {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				break
			}
			q.wakeAll()
		}
		conn.Close(context.Background())
	}
}

// writableTimeout bounds the database check of Writable.
const writableTimeout = 2 * time.Second

// Writable reports whether the database takes writes now: it answers, and
// it is not a standby in recovery (read-only).
func (q *Queue) Writable() error {
	ctx, cancel := context.WithTimeout(context.Background(), writableTimeout)
	defer cancel()
	var standby bool
	if err := q.pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return fmt.Errorf("queue: PostgreSQL at %s does not answer: %w", q.where, err)
	}
	if standby {
		return fmt.Errorf("queue: PostgreSQL at %s is a read-only standby", q.where)
	}
	return nil
}

// opCtx bounds one database operation.
func (q *Queue) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, q.cfg.OpTimeout)
}

// lifetime returns the lifetime of a message from sender-null or not.
func (q *Queue) lifetime(bounce bool) time.Duration {
	if bounce {
		return q.cfg.BounceLifetime
	}
	return q.cfg.Lifetime
}

// micros converts d for SQL "… * interval '1 microsecond'".
func micros(d time.Duration) int64 { return d.Microseconds() }

// The shared queue implements the contract.
var _ queue.Store = (*Queue)(nil)
