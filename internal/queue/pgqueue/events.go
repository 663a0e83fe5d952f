package pgqueue

import (
	"context"
	"errors"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
)

// finish delivers EventFinished for message id and then deletes it. The
// message carries a finishing mark until then: if this node dies between the
// event and the delete, another node (or this one after a restart) finds the
// mark expired and finishes the message again (at least once, Recovered
// set).
func (q *Queue) finish(id string, recovered bool) {
	if q.cfg.OnEvent != nil {
		info, err := q.Show(id)
		if err != nil {
			q.log.Error("queue: cannot read finished message for its report", "id", id, "err", err)
			return
		}
		q.cfg.OnEvent(queue.Event{Kind: queue.EventFinished, ID: id, Env: info.Env, Rcpts: info.Rcpts, Body: info.Body, Recovered: recovered})
	}
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	if err := q.exec(ctx, id, "remove", false, append([]string{`DELETE FROM ferry_messages WHERE id = $1 AND finishing IS NOT NULL`}, deleteRefs...)...); err != nil && !errors.Is(err, queue.ErrNotFound) {
		q.log.Error("queue: cannot remove finished message; another node finishes it again", "id", id, "err", err)
		return
	}
	q.log.Info("removed", "id", id, "node", q.cfg.Node)
}

// sweepFinishing finishes messages whose finisher died (their mark
// expired), at most once per lease timeout per node.
func (q *Queue) sweepFinishing(ctx context.Context) {
	q.mu.Lock()
	if time.Since(q.lastSweep) < q.cfg.LeaseTimeout {
		q.mu.Unlock()
		return
	}
	q.lastSweep = time.Now()
	q.mu.Unlock()
	ctx, cancel := q.opCtx(ctx)
	defer cancel()
	rows, err := q.pool.Query(ctx, `UPDATE ferry_messages SET finishing = now() + $1 * interval '1 microsecond'
WHERE id IN (SELECT id FROM ferry_messages WHERE finishing < now() ORDER BY finishing LIMIT 100 FOR UPDATE SKIP LOCKED)
RETURNING id`, micros(q.cfg.LeaseTimeout))
	if err != nil {
		return
	}
	var ids []string
	for rows.Next() {
		var id string
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		q.log.Warn("queue: finishing a message whose finisher stopped", "id", id)
		q.finish(id, true)
	}
}

// emitDelayed delivers EventDelayed for recipient rcpt of message id with
// every recipient's state, and claims for the DSN stage that live in the
// database.
func (q *Queue) emitDelayed(id string, rcpt int) {
	if q.cfg.OnEvent == nil {
		return
	}
	info, err := q.Show(id)
	if err != nil {
		q.log.Error("queue: cannot read delayed message for its report", "id", id, "err", err)
		return
	}
	q.cfg.OnEvent(queue.Event{Kind: queue.EventDelayed, ID: id, Env: info.Env, Rcpts: info.Rcpts, Body: info.Body, Rcpt: rcpt,
		Claim: func(tag string) bool { return q.claimReport(id, tag) }, Unclaim: func(tag string) { q.unclaimReport(id, tag) }})
}

// claimReport records that report tag was made for message id; it reports
// true only for the first claim across every node. On a database error it
// reports false: a missing delay report is better than one per node.
func (q *Queue) claimReport(id, tag string) bool {
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	ct, err := q.pool.Exec(ctx, `INSERT INTO ferry_claims (msg_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, tag)
	if err != nil {
		q.log.Warn("queue: cannot record report claim; report not sent", "id", id, "tag", tag, "err", err)
		return false
	}
	return ct.RowsAffected() == 1
}

// unclaimReport drops a claim whose report could not be queued.
func (q *Queue) unclaimReport(id, tag string) {
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	if _, err := q.pool.Exec(ctx, `DELETE FROM ferry_claims WHERE msg_id = $1 AND tag = $2`, id, tag); err != nil {
		q.log.Warn("queue: cannot drop report claim", "id", id, "tag", tag, "err", err)
	}
}
