package pgqueue

import (
	"context"

	"github.com/ferrymta/ferry/internal/queue"
)

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
