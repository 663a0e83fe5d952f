package pgqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymta/ferry/internal/queue"
)

// leaseState is this node's side of a lease it holds.
type leaseState struct {
	l *queue.Lease
	// renewed is when the lease was last claimed or renewed, on this
	// node's monotonic clock.
	renewed time.Time
	// delayed maps message IDs deferred under the lease to the recipient
	// whose deferral owes a delay event, sent at Release.
	delayed map[string]int
}

// retryTogether is how close to due a recipient may be to join a lease of
// its message (as for the segment log).
const retryTogether = time.Second

// candidateScan bounds the due groups looked at to choose hops.
const candidateScan = 500

// Lease blocks until due work exists for a next hop with room for another
// lease across every node, or ctx is done. It waits for a NOTIFY or the
// next due time, never polling. A database error is returned (the caller
// waits and tries again).
//
// The idle delivery workers of a node do not all ask the database when
// they are woken: one probe runs at a time, and once a probe that started
// after the latest wake-up found nothing to claim, the others go back to
// waiting until the next wake-up or the time that probe found (see
// idleLocked).
func (q *Queue) Lease(ctx context.Context) (*queue.Lease, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, queue.ErrClosed
		}
		wake := q.wake
		wait, idle := q.idleLocked()
		q.mu.Unlock()
		if idle {
			if err := queue.WaitWake(ctx, wake, wait); err != nil {
				return nil, err
			}
			continue
		}
		l, next, probed, err := q.probeOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("queue: lease from PostgreSQL at %s: %w", q.where, err)
		}
		if l != nil {
			return l, nil
		}
		if !probed {
			continue // another worker's probe answered meanwhile
		}
		if err := queue.WaitWake(ctx, wake, q.idleWait(next)); err != nil {
			return nil, err
		}
	}
}

// idleWait is how long a fruitless probe that found next (0: nothing)
// lets the workers wait for a wake-up.
func (q *Queue) idleWait(next time.Duration) time.Duration {
	wait := q.cfg.LeaseTimeout
	if next > 0 {
		wait = min(wait, next)
	}
	return max(wait, time.Millisecond)
}

// idleLocked reports whether a probe that started after the latest wake-up
// found nothing to claim, and how long its answer holds. Callers hold q.mu.
func (q *Queue) idleLocked() (time.Duration, bool) {
	if !q.idleSet || q.idleGen != q.gen {
		return 0, false
	}
	wait := time.Until(q.idleUntil)
	return wait, wait > 0
}

// probeOnce runs one probe for due work (tryLease), one per node at a time.
// probed is false when it did not run because a probe that ended while
// this one waited its turn found nothing.
func (q *Queue) probeOnce(ctx context.Context) (l *queue.Lease, next time.Duration, probed bool, err error) {
	select {
	case q.probe <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, false, ctx.Err()
	}
	defer func() { <-q.probe }()
	q.mu.Lock()
	if _, idle := q.idleLocked(); idle || q.closed {
		q.mu.Unlock()
		return nil, 0, false, nil
	}
	gen := q.gen
	q.mu.Unlock()
	q.probes.Add(1)
	l, next, err = q.tryLease(ctx)
	if err == nil && l == nil {
		q.mu.Lock()
		if q.gen == gen { // no wake-up during the probe: its answer stands
			q.idleSet, q.idleGen, q.idleUntil = true, gen, time.Now().Add(q.idleWait(next))
		}
		q.mu.Unlock()
	}
	return l, next, true, err
}

// tryLease claims due work of one hop, or returns how long until work may
// be due (0: unknown).
func (q *Queue) tryLease(ctx context.Context) (*queue.Lease, time.Duration, error) {
	ctx, cancel := q.opCtx(ctx)
	defer cancel()
	// The candidates are read as of one instant, at (the server's clock),
	// and the next due time below is what comes after that instant: a
	// group that became due while the hops were claimed is then found at
	// once, instead of after the lease timeout.
	rows, err := q.pool.Query(ctx, `SELECT t.at, c.hop FROM (SELECT now() AS at) t LEFT JOIN LATERAL (
	SELECT hop, min(due) AS first FROM (
		SELECT hop, due FROM ferry_groups
		WHERE due <= t.at AND (lease_until IS NULL OR lease_until < t.at)
		ORDER BY due LIMIT $1) s
	GROUP BY hop) c ON true
ORDER BY c.first`, candidateScan)
	if err != nil {
		return nil, 0, err
	}
	var at time.Time
	var hops []string
	for rows.Next() {
		var hop *string
		if err := rows.Scan(&at, &hop); err != nil {
			rows.Close()
			return nil, 0, err
		}
		if hop != nil {
			hops = append(hops, *hop)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	locked := false
	for _, h := range hops {
		l, expired, full, err := q.claim(ctx, h)
		if err != nil {
			return nil, 0, err
		}
		if l == nil {
			locked = locked || !full
			continue
		}
		if l = q.expireItems(ctx, l, expired); l != nil && len(l.Items) == 0 {
			q.Release(l) // nothing left to attempt (cannot happen while due is kept right)
			l = nil
		}
		if l != nil {
			return l, 0, nil
		}
	}
	// Nothing to claim: wake at the next due time or lease expiry still
	// ahead. Work that is due but waits for a full hop wakes us with the
	// NOTIFY of the Release that makes room, or at that lease's expiry (a
	// dead node's lease): no polling.
	var next *float64
	err = q.pool.QueryRow(ctx, `SELECT extract(epoch FROM least(
	(SELECT min(greatest(due, coalesce(lease_until, due))) FROM ferry_groups
		WHERE due IS NOT NULL AND greatest(due, coalesce(lease_until, due)) > $1),
	(SELECT min(expires) FROM ferry_leases WHERE expires > $1)) - clock_timestamp())`, at).Scan(&next)
	if err != nil {
		return nil, 0, err
	}
	if next == nil {
		if locked {
			// Due work was seen but none could be claimed: its rows were
			// locked by another transaction (SKIP LOCKED), which may end
			// without a NOTIFY. Look again soon rather than at the lease
			// timeout.
			return nil, lockedRetry, nil
		}
		return nil, 0, nil
	}
	d := max(time.Duration(*next*float64(time.Second)), time.Millisecond)
	if locked {
		d = min(d, lockedRetry)
	}
	return nil, d, nil
}

// lockedRetry is how soon Lease looks again at due work it could not claim
// because another transaction held its rows (not because its hop was at
// its connection limit: a Release's NOTIFY says when that ends).
const lockedRetry = time.Second

// hopLimit returns the cluster-wide lease limit of hop.
func (q *Queue) hopLimit(hop string) int {
	if q.cfg.HopLimit != nil {
		if n := q.cfg.HopLimit(hop); n > 0 {
			return n
		}
	}
	return q.cfg.HopConcurrency
}

// claim leases up to LeaseMaxItems due groups of hop, unless the hop has
// its limit of live leases (full is then set). An advisory lock per hop
// makes counting and inserting the lease atomic across nodes; SKIP LOCKED
// leaves groups being updated to others.
func (q *Queue) claim(ctx context.Context, hop string) (*queue.Lease, []string, bool, error) {
	tx, err := q.pool.Begin(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	defer tx.Rollback(context.Background())
	var live int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM ferry_leases, pg_advisory_xact_lock(hashtextextended($1, 1717))
WHERE hop = $1 AND expires > now()`, hop).Scan(&live); err != nil {
		return nil, nil, false, err
	}
	if live >= q.hopLimit(hop) {
		return nil, nil, true, nil
	}
	// Expired leases only kept their hop's count; their groups keep the
	// epoch for fencing, and renewing them fails without the row too.
	if _, err := tx.Exec(ctx, `DELETE FROM ferry_leases WHERE hop = $1 AND expires <= now()`, hop); err != nil {
		return nil, nil, false, err
	}
	rows, err := tx.Query(ctx, `WITH c AS (
	SELECT msg_id FROM ferry_groups
	WHERE hop = $1 AND due <= now() AND (lease_until IS NULL OR lease_until < now())
	ORDER BY due LIMIT $2 FOR UPDATE SKIP LOCKED),
l AS (INSERT INTO ferry_leases (epoch, hop, node, expires)
	VALUES (nextval('ferry_lease_epoch'), $1, $3, now() + $4 * interval '1 microsecond') RETURNING epoch, expires)
UPDATE ferry_groups g SET lease_epoch = l.epoch, lease_node = $3, lease_until = l.expires
FROM c, l WHERE g.msg_id = c.msg_id AND g.hop = $1
RETURNING g.msg_id, l.epoch, l.expires`, hop, q.cfg.LeaseMaxItems, q.cfg.Node, micros(q.cfg.LeaseTimeout))
	if err != nil {
		return nil, nil, false, err
	}
	var ids []string
	var epoch int64
	var expires time.Time
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id, &epoch, &expires}, func() error {
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, nil, false, err
	}
	if len(ids) == 0 {
		return nil, nil, false, nil // rolled back: no lease row stays
	}
	l := &queue.Lease{Hop: hop, Expires: expires, Epoch: uint64(epoch), Node: q.cfg.Node}
	rows, err = tx.Query(ctx, `SELECT m.id, m.envelope, m.size, m.expires <= now(), r.idx, r.attempts
FROM ferry_messages m JOIN ferry_recipients r ON r.msg_id = m.id
WHERE m.id = ANY($1) AND r.hop = $2 AND r.state IN (0, 3) AND r.next_at <= now() + $3 * interval '1 microsecond'
ORDER BY m.id, r.idx`, ids, hop, micros(retryTogether))
	if err != nil {
		return nil, nil, false, err
	}
	byID := map[string]*queue.Item{}
	var expired []string
	var (
		env       []byte
		size      int64
		isExpired bool
		idx       int32
		attempts  int32
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &env, &size, &isExpired, &idx, &attempts}, func() error {
		it := byID[id]
		if it == nil {
			e, err := queue.DecodeEnvelope(id, env)
			if err != nil {
				return fmt.Errorf("envelope of %s: %w", id, err)
			}
			it = &queue.Item{Env: e, Size: size, Body: q.bodyOpener(id), Lease: l}
			byID[id] = it
			if isExpired {
				expired = append(expired, id)
			}
		}
		it.Rcpts = append(it.Rcpts, int(idx))
		it.Attempts = max(it.Attempts, int(attempts))
		return nil
	})
	if err != nil {
		return nil, nil, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, false, err
	}
	for _, id := range ids {
		if it := byID[id]; it != nil {
			l.Items = append(l.Items, *it)
		}
	}
	q.mu.Lock()
	q.leases[l.Epoch] = &leaseState{l: l, renewed: time.Now()}
	q.mu.Unlock()
	return l, expired, false, nil
}

// bodyOpener returns a function that reads message id's body.
func (q *Queue) bodyOpener(id string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		ctx, cancel := q.opCtx(context.Background())
		defer cancel()
		var b []byte
		err := q.pool.QueryRow(ctx, "SELECT body FROM ferry_messages WHERE id = $1", id).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
		}
		if err != nil {
			return nil, fmt.Errorf("queue: read body of %s: %w", id, err)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}
