package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Owed reports. A finished message whose failure report the DSN stage could
// not queue (Event.Keep: the database refused the report's Put, say) stays
// in ferry_messages with report_owed set, its outcomes recorded and nothing
// left to deliver. Every node looks for such messages: soon after one of
// its own was kept (after 1 s, doubling up to owedIdle while some remain),
// and every owedIdle otherwise, so that a message kept by a node that died
// or restarted is found too. Each is finished again in a transaction of its
// own that holds its row (FOR UPDATE SKIP LOCKED: one node at a time), with
// Event.Retried set; it is removed only once its report is queued.

// owedIdle is how often a node looks for owed reports when it kept none.
const owedIdle = 30 * time.Second

// owedBatch is the most owed reports one pass retries.
const owedBatch = 32

// kickOwed starts the quick retries of owed reports.
func (q *Queue) kickOwed() {
	select {
	case q.owedKick <- struct{}{}:
	default:
	}
}

// owedLoop retries owed reports until ctx ends.
func (q *Queue) owedLoop(ctx context.Context) {
	wait := time.Duration(0) // a first pass at start: reports owed before a restart
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.owedKick:
			if wait > time.Second {
				wait = time.Second
				t.Reset(wait)
			}
			continue
		case <-t.C:
		}
		left, err := q.retryOwed(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			q.log.Warn("queue: cannot retry owed reports", "node", q.cfg.Node, "err", err)
			wait = min(max(2*wait, time.Second), owedIdle)
		case left > 0:
			wait = min(max(2*wait, time.Second), owedIdle)
		default:
			wait = owedIdle
		}
		t.Reset(wait)
	}
}

// retryOwed finishes again up to owedBatch messages whose reports are owed
// and reports how many are still owed among them.
func (q *Queue) retryOwed(ctx context.Context) (left int, err error) {
	octx, cancel := q.opCtx(ctx)
	rows, err := q.pool.Query(octx, `SELECT id FROM ferry_messages WHERE report_owed ORDER BY arrival LIMIT $1`, owedBatch)
	if err != nil {
		cancel()
		return 0, fmt.Errorf("queue: find owed reports: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	cancel()
	if err != nil {
		return 0, fmt.Errorf("queue: find owed reports: %w", err)
	}
	for _, id := range ids {
		kept, err := q.retryOwedOne(ctx, id)
		if err != nil {
			return left + 1, err
		}
		if kept {
			left++
		}
	}
	return left, nil
}

// retryOwedOne finishes message id again when its report is still owed and
// no other node holds it, and reports whether it is still kept.
func (q *Queue) retryOwedOne(ctx context.Context, id string) (kept bool, err error) {
	octx, cancel := q.opCtx(ctx)
	defer cancel()
	tx, err := q.pool.Begin(octx)
	if err != nil {
		return false, fmt.Errorf("queue: retry report of %s: %w", id, err)
	}
	defer tx.Rollback(context.WithoutCancel(octx))
	var got string
	err = tx.QueryRow(octx, `SELECT id FROM ferry_messages WHERE id = $1 AND report_owed FOR UPDATE SKIP LOCKED`, id).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // done meanwhile, or another node has it now
	}
	if err != nil {
		return false, fmt.Errorf("queue: retry report of %s: %w", id, err)
	}
	kept, err = q.finishTx(octx, tx, id, true)
	if err != nil {
		return false, err
	}
	if err := tx.Commit(octx); err != nil {
		return false, fmt.Errorf("queue: retry report of %s: %w", id, err)
	}
	return kept, nil
}
