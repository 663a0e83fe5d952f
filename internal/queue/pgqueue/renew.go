package pgqueue

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymta/ferry/internal/queue"
)

// renewSQL extends lease $1 and its groups by $2 microseconds, unless the
// lease has expired already (its work may be leased again: the holder must
// stop). It returns the new expiry.
const renewSQL = `WITH l AS (
	UPDATE ferry_leases SET expires = now() + $2 * interval '1 microsecond'
	WHERE epoch = $1 AND expires > now() RETURNING expires),
g AS (UPDATE ferry_groups SET lease_until = (SELECT expires FROM l)
	WHERE lease_epoch = $1 AND lease_until IS NOT NULL AND EXISTS (SELECT 1 FROM l))
SELECT expires FROM l`

// Renew extends a lease by the lease timeout. It reports false when the
// lease expired (its work may be another node's now) or the database
// cannot be reached: either way the caller must stop delivering it. A lease
// claimed or renewed less than a third of the lease timeout ago is not
// renewed again (the heartbeat keeps it); fencing, not Renew, is what keeps
// a late outcome from counting.
func (q *Queue) Renew(l *queue.Lease) bool {
	return q.renew(l, false)
}

// renew renews l; unless force, a recent renewal suffices.
func (q *Queue) renew(l *queue.Lease, force bool) bool {
	q.mu.Lock()
	ls, ok := q.leases[l.Epoch]
	fresh := ok && time.Since(ls.renewed) < q.cfg.LeaseTimeout/3
	q.mu.Unlock()
	if !ok {
		return false
	}
	if fresh && !force {
		return true
	}
	start := time.Now()
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	var exp time.Time
	err := q.pool.QueryRow(ctx, renewSQL, int64(l.Epoch), micros(q.cfg.LeaseTimeout)).Scan(&exp)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			q.lost(l, "lease expired")
		} else {
			q.log.Warn("queue: cannot renew lease", "hop", l.Hop, "epoch", l.Epoch, "err", err)
		}
		return false
	}
	q.mu.Lock()
	l.Expires = exp
	if ls := q.leases[l.Epoch]; ls != nil {
		ls.renewed = start
	}
	q.mu.Unlock()
	return true
}

// lost forgets a lease that expired under this node.
func (q *Queue) lost(l *queue.Lease, why string) {
	q.mu.Lock()
	_, ok := q.leases[l.Epoch]
	delete(q.leases, l.Epoch)
	q.mu.Unlock()
	if ok {
		q.log.Warn("queue: lease lost; its work may be delivered by another node", "hop", l.Hop, "epoch", l.Epoch, "reason", why)
	}
}

// heartbeat renews every lease this node holds every Config.Heartbeat, so
// that a long delivery keeps its lease while the node lives.
func (q *Queue) heartbeat(ctx context.Context) {
	t := time.NewTicker(q.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		held := make([]*queue.Lease, 0, len(q.leases))
		for _, ls := range q.leases {
			held = append(held, ls.l)
		}
		q.mu.Unlock()
		for _, l := range held {
			q.renew(l, true)
		}
	}
}

// Release ends a lease: its groups are free again (their unreported
// recipients due at once), other nodes are woken, and the delay events
// owed by deferrals under the lease go out.
func (q *Queue) Release(l *queue.Lease) {
	q.mu.Lock()
	ls := q.leases[l.Epoch]
	delete(q.leases, l.Epoch)
	q.mu.Unlock()
	if ls == nil {
		return // taken back already
	}
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM ferry_leases WHERE epoch = $1`, int64(l.Epoch))
	b.Queue(`UPDATE ferry_groups SET lease_until = NULL, lease_node = NULL WHERE lease_epoch = $1 AND lease_until IS NOT NULL`, int64(l.Epoch))
	b.Queue(`SELECT pg_notify($1, 'release')`, notifyChannel)
	if err := q.pool.SendBatch(ctx, b).Close(); err != nil {
		q.log.Warn("queue: cannot release lease; it expires by itself", "hop", l.Hop, "epoch", l.Epoch, "err", err)
	} else {
		q.wakeAll() // this node's workers look again now, not after the NOTIFY's round trip
	}
	for id, rcpt := range ls.delayed {
		q.emitDelayed(id, rcpt)
	}
}
