package pgqueue

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// exec runs statements on message id in one transaction, the first of which
// must touch the message row (no row: queue.ErrNotFound), and wakes the
// nodes when notify is set.
func (q *Queue) exec(ctx context.Context, id, what string, notify bool, stmts ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := q.opCtx(ctx)
	defer cancel()
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		// One round trip for every statement; the first one's row count
		// says whether the message exists.
		b := &pgx.Batch{}
		for _, s := range stmts {
			b.Queue(s, id)
		}
		if notify {
			b.Queue("SELECT pg_notify($1, $2)", notifyChannel, what)
		}
		br := tx.SendBatch(ctx, b)
		ct, err := br.Exec()
		if err == nil && ct.RowsAffected() == 0 {
			err = fmt.Errorf("%w: %s", queue.ErrNotFound, id)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		return fmt.Errorf("queue: %s %s in PostgreSQL at %s: %w", what, id, q.where, err)
	}
	return err
}

// deleteRefs delete the rows that refer to message $1, after its own row
// (the schema has no foreign keys, see migrations/0001_init.sql).
var deleteRefs = []string{
	`DELETE FROM ferry_recipients WHERE msg_id = $1`,
	`DELETE FROM ferry_groups WHERE msg_id = $1`,
	`DELETE FROM ferry_attempts WHERE msg_id = $1`,
	`DELETE FROM ferry_claims WHERE msg_id = $1`,
}

// Hold stops delivery of a message until Unhold (a lease out on it runs to
// its end). A held message does not expire while held.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.exec(ctx, id, "hold", false,
		`UPDATE ferry_messages SET held = true WHERE id = $1`,
		`UPDATE ferry_groups SET due = NULL WHERE msg_id = $1`)
}

// Unhold releases a held message; its due recipients are due at once.
func (q *Queue) Unhold(ctx context.Context, id string) error {
	return q.exec(ctx, id, "release", true,
		`UPDATE ferry_messages SET held = false WHERE id = $1`,
		recomputeDue)
}

// RetryNow makes every pending recipient of a message due at once.
func (q *Queue) RetryNow(ctx context.Context, id string) error {
	return q.exec(ctx, id, "retry", true,
		`SELECT 1 FROM ferry_messages WHERE id = $1 FOR NO KEY UPDATE`,
		`UPDATE ferry_recipients SET next_at = now() WHERE msg_id = $1 AND state IN (0, 3)`,
		recomputeDue)
}

// RetryHop makes every message with a pending recipient for hop due at once
// and returns how many messages it touched.
func (q *Queue) RetryHop(ctx context.Context, hop string) (int, error) {
	hop = smtp.DomainKey(hop)
	ctx, cancel := q.opCtx(ctx)
	defer cancel()
	n := 0
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `WITH r AS (UPDATE ferry_recipients SET next_at = now()
	WHERE hop = $1 AND state IN (0, 3) RETURNING msg_id)
SELECT DISTINCT msg_id FROM r`, hop)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		n = len(ids)
		if _, err := tx.Exec(ctx, `UPDATE ferry_groups g SET due = CASE WHEN m.held THEN NULL ELSE now() END
FROM ferry_messages m WHERE m.id = g.msg_id AND g.hop = $1 AND g.msg_id = ANY($2)`, hop, ids); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, 'retry')", notifyChannel)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("queue: retry hop %s in PostgreSQL at %s: %w", hop, q.where, err)
	}
	return n, nil
}

// Delete removes a message without notice to anyone (no DSN). A node
// delivering it finds it gone when it records the outcome.
func (q *Queue) Delete(ctx context.Context, id string) error {
	err := q.exec(ctx, id, "delete", false, append([]string{`DELETE FROM ferry_messages WHERE id = $1`}, deleteRefs...)...)
	if err == nil {
		q.log.Info("deleted", "id", id)
	}
	return err
}

// BounceNow fails every pending recipient with 5.0.0; the message then
// finishes and its sender gets a DSN.
func (q *Queue) BounceNow(ctx context.Context, id string) error {
	m, err := q.Show(id)
	if err != nil {
		return err
	}
	var chs []change
	for _, r := range m.Rcpts {
		if r.State != queue.Sent && r.State != queue.Failed {
			chs = append(chs, change{rcpt: r.Index, bounce: true})
		}
	}
	if len(chs) == 0 {
		return nil
	}
	_, err = q.apply(ctx, nil, id, chs)
	return err
}
