package pgqueue

import (
	"context"
	"fmt"
	"io"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// emitDelayed delivers EventDelayed for recipient rcpt of message id with
// every recipient's state, and the record of reports made, which lives in
// the database (ferry_claims).
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
		Reported: func(tag string) (bool, error) { return q.reported(id, tag) },
		PutReported: func(ctx context.Context, tag string, env *smtp.Envelope, body io.Reader) (string, error) {
			return q.putReported(ctx, id, tag, env, body)
		}})
}

// reported reports whether report tag was made for message id, by any node.
func (q *Queue) reported(id, tag string) (bool, error) {
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	var made bool
	err := q.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ferry_claims WHERE msg_id = $1 AND tag = $2)`, id, tag).Scan(&made)
	if err != nil {
		return false, fmt.Errorf("queue: look up report %s of %s in PostgreSQL at %s: %w", tag, id, q.where, err)
	}
	return made, nil
}

// putReportedSQL is putSQL with the claim of report $14 for message $13
// first: every insert happens only if the claim was new, in one statement
// (one transaction), so that the report and the record that it was made
// are committed together or not at all.
const putReportedSQL = `WITH c AS (
	INSERT INTO ferry_claims (msg_id, tag) VALUES ($13::text, $14::text) ON CONFLICT DO NOTHING RETURNING 1),
m AS (INSERT INTO ferry_messages (id, envelope, body, size, arrival, expires)
	SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::int8[], $5::timestamptz[], $6::timestamptz[])
	WHERE EXISTS (SELECT 1 FROM c)),
r AS (INSERT INTO ferry_recipients (msg_id, idx, hop, addr)
	SELECT * FROM unnest($7::text[], $8::int4[], $9::text[], $10::text[])
	WHERE EXISTS (SELECT 1 FROM c))
INSERT INTO ferry_groups (msg_id, hop)
	SELECT * FROM unnest($11::text[], $12::text[])
	WHERE EXISTS (SELECT 1 FROM c)`

// putReported stores report env/body about message id and records report
// tag as made, in one commit; it returns queue.ErrReported, storing
// nothing, when tag was recorded first (by this node or another).
func (q *Queue) putReported(ctx context.Context, id, tag string, env *smtp.Envelope, body io.Reader) (string, error) {
	r, held, err := q.prepare(ctx, env, body)
	if err != nil {
		return "", err
	}
	defer q.mem.Release(held)
	var params putParams
	values := append(params.encode([]*putReq{r}), []byte(id), []byte(tag))
	octx, cancel := q.opCtx(ctx)
	defer cancel()
	c, err := q.pool.Acquire(octx)
	if err != nil {
		return "", fmt.Errorf("queue: store report %s of %s in PostgreSQL at %s: %w", tag, id, q.where, err)
	}
	defer c.Release()
	res := c.Conn().PgConn().ExecParams(octx, putReportedSQL, values, nil, binaryFormat, nil).Read()
	if res.Err != nil {
		if isUniqueViolation(res.Err) {
			res.Err = fmt.Errorf("%w: %s", queue.ErrExists, env.ID)
		}
		return "", fmt.Errorf("queue: store report %s of %s in PostgreSQL at %s: %w", tag, id, q.where, res.Err)
	}
	if res.CommandTag.RowsAffected() == 0 {
		return "", queue.ErrReported
	}
	q.notePut()
	q.log.Debug("stored", "id", env.ID, "rcpts", len(env.Rcpts), "size", len(r.body), "report_of", id, "tag", tag)
	return env.ID, nil
}
