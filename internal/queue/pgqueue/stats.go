package pgqueue

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
)

// statsTimeout bounds one read of the shared totals.
const statsTimeout = 3 * time.Second

// maxStatsNodes bounds the nodes SharedStats names; leases of the nodes
// past it (in name order) are counted under "other".
const maxStatsNodes = 100

// sharedStatsSQL reads the queue totals in one statement (one snapshot).
// It scans ferry_recipients (narrow rows: every message has a recipient 0)
// and never the heap of ferry_messages, where bodies live: held messages
// come from the partial index ferry_messages_held, the oldest from the
// primary key (IDs sort by time), the size from the relations' sizes.
const sharedStatsSQL = `WITH r AS (SELECT count(*) FILTER (WHERE idx = 0) AS msgs,
	count(*) FILTER (WHERE state = 0) AS pending,
	count(*) FILTER (WHERE state = 3) AS deferred_rcpts,
	count(DISTINCT msg_id) FILTER (WHERE state = 3) AS deferred_msgs
	FROM ferry_recipients),
h AS (SELECT count(*) AS held,
	count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ferry_recipients x WHERE x.msg_id = m.id AND x.state = 3)) AS held_deferred
	FROM ferry_messages m WHERE held)
SELECT r.msgs, r.pending, r.deferred_rcpts, r.deferred_msgs, h.held, h.held_deferred,
	(SELECT arrival FROM ferry_messages ORDER BY id LIMIT 1),
	pg_total_relation_size('ferry_messages') + pg_total_relation_size('ferry_recipients') +
	pg_total_relation_size('ferry_groups') + pg_total_relation_size('ferry_attempts')
FROM r, h`

// leaseStatsSQL counts the leases recorded per node, live and expired.
// The first $1 nodes in name order keep their name, the rest are "other".
const leaseStatsSQL = `WITH n AS (SELECT node, count(*) FILTER (WHERE expires > now()) AS live,
	count(*) FILTER (WHERE expires <= now()) AS expired FROM ferry_leases GROUP BY node),
k AS (SELECT *, row_number() OVER (ORDER BY node) AS k FROM n)
SELECT CASE WHEN k <= $1 THEN node ELSE '` + otherNode + `' END, sum(live)::bigint, sum(expired)::bigint
FROM k GROUP BY 1 ORDER BY min(k)`

// SharedStats returns the cluster-wide totals of the shared queue. They are
// read at most once per Config.StatsInterval and cached; concurrent callers
// share one read, which is bounded by a few seconds. On an error the last
// figures read are returned with it (Read says how old they are).
func (q *Queue) SharedStats() (queue.SharedStats, error) {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	if !q.statsAt.IsZero() && time.Since(q.statsAt) < q.cfg.StatsInterval {
		return q.stats, q.statsErr
	}
	st, err := q.readSharedStats()
	q.statsAt, q.statsErr = time.Now(), err
	if err == nil {
		q.stats = st
	}
	return q.stats, err
}

// readSharedStats reads the totals from the database.
func (q *Queue) readSharedStats() (queue.SharedStats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), min(statsTimeout, q.cfg.OpTimeout))
	defer cancel()
	var (
		st                             queue.SharedStats
		msgs, pending, defRcpts, defMs int64
		held, heldDeferred, bytes      int64
		oldest                         *time.Time
	)
	err := q.pool.QueryRow(ctx, sharedStatsSQL).Scan(&msgs, &pending, &defRcpts, &defMs, &held, &heldDeferred, &oldest, &bytes)
	if err != nil {
		return st, fmt.Errorf("queue: read the totals from PostgreSQL at %s: %w", q.where, err)
	}
	st.Messages, st.Held = int(msgs), int(held)
	st.Deferred = int(defMs - heldDeferred)
	st.Active = max(0, st.Messages-st.Held-st.Deferred)
	st.PendingRcpts, st.DeferredRcpts, st.Bytes = int(pending), int(defRcpts), bytes
	if oldest != nil {
		st.Oldest = *oldest
	}
	rows, err := q.pool.Query(ctx, leaseStatsSQL, maxStatsNodes)
	if err != nil {
		return st, fmt.Errorf("queue: read the leases from PostgreSQL at %s: %w", q.where, err)
	}
	defer rows.Close()
	for rows.Next() {
		var nl queue.NodeLeases
		var live, expired int64
		if err := rows.Scan(&nl.Node, &live, &expired); err != nil {
			return st, fmt.Errorf("queue: read the leases from PostgreSQL at %s: %w", q.where, err)
		}
		nl.Live, nl.Expired = int(live), int(expired)
		st.Leases = append(st.Leases, nl)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("queue: read the leases from PostgreSQL at %s: %w", q.where, err)
	}
	st.Read = time.Now()
	return st, nil
}

// otherNode names the nodes past maxStatsNodes in SharedStats.
const otherNode = "other"

// Stats returns the queue totals (every node's messages, from the cached
// SharedStats) and this node's leases.
func (q *Queue) Stats() queue.Stats {
	var st queue.Stats
	if ss, err := q.SharedStats(); err == nil || !ss.Read.IsZero() {
		st.Messages = ss.Messages
	}
	q.mu.Lock()
	st.Leases = len(q.leases)
	q.mu.Unlock()
	return st
}

// The shared queue reports cluster-wide totals.
var _ queue.Shared = (*Queue)(nil)
