package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// change is one recipient outcome to record.
type change struct {
	rcpt int
	r    queue.Result
	// expire fails the recipient as expired (found at lease time); bounce
	// fails it as bounced by the administrator.
	expire, bounce bool
}

// recorded is what apply did.
type recorded struct {
	// finished is set when every recipient became final and the message
	// was removed.
	finished bool
	// deferred is the last recipient deferred, or -1.
	deferred int
	states   []queue.RcptState
}

// Update records one recipient's outcome, fenced by l's epoch: when the
// recipient's work was leased again since l, the outcome is refused with
// queue.ErrLeaseLost and the newer lease's outcome wins.
func (q *Queue) Update(ctx context.Context, l *queue.Lease, id string, rcpt int, r queue.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch r.State {
	case queue.Sent, queue.Failed, queue.Deferred:
	default:
		return fmt.Errorf("queue: result state %d is not Sent, Deferred or Failed", r.State)
	}
	rec, err := q.apply(ctx, l, id, []change{{rcpt: rcpt, r: r}})
	if err != nil {
		return err
	}
	if rec.deferred >= 0 && q.cfg.OnEvent != nil {
		owed := false
		if l != nil {
			q.mu.Lock()
			if ls := q.leases[l.Epoch]; ls != nil {
				if ls.delayed == nil {
					ls.delayed = map[string]int{}
				}
				ls.delayed[id] = rec.deferred
				owed = true
			}
			q.mu.Unlock()
		}
		if !owed {
			q.emitDelayed(id, rec.deferred)
		}
	}
	return nil
}

// apply records changes to message id in one transaction.
func (q *Queue) apply(ctx context.Context, l *queue.Lease, id string, chs []change) (recorded, error) {
	rec := recorded{deferred: -1}
	ctx, cancel := q.opCtx(ctx)
	defer cancel()
	tx, err := q.pool.Begin(ctx)
	if err != nil {
		return rec, fmt.Errorf("queue: record outcome for %s in PostgreSQL at %s: %w", id, q.where, err)
	}
	defer tx.Rollback(context.Background())
	var arrival, expires, now time.Time
	var held bool
	err = tx.QueryRow(ctx, `SELECT arrival, expires, held, now() FROM ferry_messages WHERE id = $1 FOR NO KEY UPDATE`, id).
		Scan(&arrival, &expires, &held, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return rec, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	if err != nil {
		return rec, fmt.Errorf("queue: record outcome for %s: %w", id, err)
	}
	type rcptRow struct {
		hop      string
		state    int16
		attempts int32
	}
	var rcpts []rcptRow
	var rr rcptRow
	rows, _ := tx.Query(ctx, `SELECT hop, state, attempts FROM ferry_recipients WHERE msg_id = $1 ORDER BY idx FOR UPDATE`, id)
	if _, err := pgx.ForEachRow(rows, []any{&rr.hop, &rr.state, &rr.attempts}, func() error { rcpts = append(rcpts, rr); return nil }); err != nil {
		return rec, fmt.Errorf("queue: record outcome for %s: %w", id, err)
	}
	epochs := map[string]int64{}
	var hop string
	var epoch int64
	rows, _ = tx.Query(ctx, `SELECT hop, lease_epoch FROM ferry_groups WHERE msg_id = $1 FOR UPDATE`, id)
	if _, err := pgx.ForEachRow(rows, []any{&hop, &epoch}, func() error { epochs[hop] = epoch; return nil }); err != nil {
		return rec, fmt.Errorf("queue: record outcome for %s: %w", id, err)
	}
	lifetime := expires.Sub(arrival)
	b := &pgx.Batch{}
	hops := map[string]bool{}
	for _, ch := range chs {
		if ch.rcpt < 0 || ch.rcpt >= len(rcpts) {
			return rec, fmt.Errorf("queue: message %s has no recipient %d", id, ch.rcpt)
		}
		rc := &rcpts[ch.rcpt]
		if st := queue.RcptState(rc.state); st == queue.Sent || st == queue.Failed {
			return rec, fmt.Errorf("%w: %s recipient %d", queue.ErrFinal, id, ch.rcpt)
		}
		if l != nil && uint64(epochs[rc.hop]) != l.Epoch {
			return rec, fmt.Errorf("%w: %s recipient %d (lease epoch %d, now %d)", queue.ErrLeaseLost, id, ch.rcpt, l.Epoch, epochs[rc.hop])
		}
		at := ch.r.At
		if at.IsZero() {
			at = now
		}
		state, reply, expired, attempts := ch.r.State, ch.r.Reply, false, int(rc.attempts)+1
		var next *time.Time
		switch {
		case ch.bounce:
			state, reply, attempts = queue.Failed, queue.AdminBounceReply(), int(rc.attempts)
		case ch.expire:
			state, reply, expired, attempts = queue.Failed, queue.ExpiryReply(lifetime, ch.r.Reply), true, int(rc.attempts)
		case state == queue.Deferred && !now.Before(expires):
			state, reply, expired = queue.Failed, queue.ExpiryReply(lifetime, ch.r.Reply), true
		case state == queue.Deferred:
			n := now.Add(queue.RetryDelay(q.cfg.RetryInitial, q.cfg.RetryMax, q.cfg.Jitter, attempts, queue.JitterSeed(id)))
			if n.After(expires) {
				n = expires
			}
			next = &n
			rec.deferred = ch.rcpt
		}
		rc.state, rc.attempts = int16(state), int32(attempts)
		hops[rc.hop] = true
		if next != nil {
			b.Queue(`UPDATE ferry_recipients SET state = $3, attempts = $4, next_at = $5 WHERE msg_id = $1 AND idx = $2`, id, ch.rcpt, int16(state), int32(attempts), *next)
		} else {
			b.Queue(`UPDATE ferry_recipients SET state = $3, attempts = $4 WHERE msg_id = $1 AND idx = $2`, id, ch.rcpt, int16(state), int32(attempts))
		}
		b.Queue(`INSERT INTO ferry_attempts (msg_id, idx, at, state, code, enhanced, reply, remote_mta, next_at, expired, node)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, id, ch.rcpt, at, int16(state), int32(reply.Code), string(reply.Enhanced),
			strings.Join(reply.Lines, "\n"), ch.r.RemoteMTA, next, expired, q.cfg.Node)
		q.logResult(id, ch.rcpt, rc.hop, state, reply, ch.r.RemoteMTA, attempts, expired, at.Sub(arrival))
	}
	for h := range hops {
		b.Queue(recomputeDue+` AND g.hop = $2`, id, h)
	}
	final := true
	for _, rc := range rcpts {
		if st := queue.RcptState(rc.state); st != queue.Sent && st != queue.Failed {
			final = false
		}
		rec.states = append(rec.states, queue.RcptState(rc.state))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return rec, fmt.Errorf("queue: record outcome for %s: %w", id, err)
	}
	if final {
		if _, err := q.finishTx(ctx, tx, id, false); err != nil {
			return rec, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return rec, fmt.Errorf("queue: record outcome for %s: %w", id, err)
	}
	rec.finished = final
	return rec, nil
}

// finishTx finishes message id, whose recipients are all final, in the
// transaction that made them so: EventFinished first (with every
// recipient's history, read in tx), then the message's rows are deleted, and
// the caller commits. Should the commit fail or the node die before it, the
// outcome is not recorded and the message is delivered again: the event is
// delivered at least once, never lost. When the DSN stage cannot queue the
// message's report (Event.Keep), the message stays, marked report_owed, and
// a later pass (owed.go) delivers the event again; kept says so.
func (q *Queue) finishTx(ctx context.Context, tx pgx.Tx, id string, retried bool) (kept bool, err error) {
	if q.cfg.OnEvent != nil {
		infos, err := q.infos(ctx, tx, []string{id}, true)
		if err != nil || len(infos) == 0 {
			return false, fmt.Errorf("queue: read finished message %s for its report: %w", id, err)
		}
		m := infos[0]
		var keepErr error
		q.cfg.OnEvent(queue.Event{Kind: queue.EventFinished, ID: id, Env: m.Env, Rcpts: m.Rcpts, Body: m.Body,
			Retried: retried, Keep: func(err error) { keepErr = err; kept = true }})
		if kept {
			if _, err := tx.Exec(ctx, `UPDATE ferry_messages SET report_owed = true WHERE id = $1`, id); err != nil {
				return false, fmt.Errorf("queue: keep message %s for its report: %w", id, err)
			}
			if !retried {
				q.log.Warn("kept for its report", "id", id, "node", q.cfg.Node, "err", keepErr)
			}
			q.kickOwed()
			return true, nil
		}
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM ferry_messages WHERE id = $1`, id)
	for _, s := range deleteRefs {
		b.Queue(s, id)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("queue: remove finished message %s: %w", id, err)
	}
	q.log.Info("removed", "id", id, "node", q.cfg.Node)
	return false, nil
}

// recomputeDue sets the due time of message $1's groups from their
// recipients still to deliver (NULL when none, or while held). Callers add
// conditions on g.
const recomputeDue = `UPDATE ferry_groups g SET due = CASE WHEN m.held THEN NULL ELSE
	(SELECT min(r.next_at) FROM ferry_recipients r WHERE r.msg_id = g.msg_id AND r.hop = g.hop AND r.state IN (0, 3)) END
FROM ferry_messages m WHERE m.id = g.msg_id AND g.msg_id = $1`

// logResult logs one recorded outcome, as the segment log does.
func (q *Queue) logResult(id string, rcpt int, hop string, st queue.RcptState, reply smtp.Reply, remote string, attempts int, expired bool, delay time.Duration) {
	if expired {
		q.log.Info("expired", "id", id, "rcpt", rcpt, "hop", hop, "reply", reply.String(), "attempts", attempts, "delay", delay)
		return
	}
	q.log.Debug("recorded", "id", id, "rcpt", rcpt, "hop", hop, "state", int(st), "relay", remote,
		"reply", reply.String(), "attempts", attempts, "delay", delay, "node", q.cfg.Node)
}

// expireItems fails the recipients of expired messages in a fresh lease and
// returns the lease without them, or nil (released) when nothing is left.
func (q *Queue) expireItems(ctx context.Context, l *queue.Lease, expired []string) *queue.Lease {
	if len(expired) == 0 {
		return l
	}
	gone := map[string]bool{}
	for _, id := range expired {
		gone[id] = true
	}
	var keep []queue.Item
	for _, it := range l.Items {
		if !gone[it.Env.ID] {
			keep = append(keep, it)
			continue
		}
		var chs []change
		for _, r := range it.Rcpts {
			chs = append(chs, change{rcpt: r, expire: true, r: queue.Result{Reply: q.lastReply(ctx, it.Env.ID, r)}})
		}
		if _, err := q.apply(ctx, l, it.Env.ID, chs); err != nil {
			q.log.Error("queue: cannot record expiry", "id", it.Env.ID, "err", err)
			continue
		}
		q.log.Info("expired", "id", it.Env.ID, "hop", l.Hop, "rcpts", len(chs))
	}
	l.Items = keep
	if len(keep) == 0 {
		q.Release(l)
		return nil
	}
	return l
}

// lastReply returns the last recorded reply of one recipient.
func (q *Queue) lastReply(ctx context.Context, id string, rcpt int) smtp.Reply {
	var code int32
	var enh, text string
	err := q.pool.QueryRow(ctx, `SELECT code, enhanced, reply FROM ferry_attempts WHERE msg_id = $1 AND idx = $2 ORDER BY seq DESC LIMIT 1`, id, rcpt).
		Scan(&code, &enh, &text)
	if err != nil {
		return smtp.Reply{}
	}
	return replyOf(code, enh, text)
}

// replyOf rebuilds a stored reply.
func replyOf(code int32, enh, text string) smtp.Reply {
	var lines []string
	if text != "" {
		lines = strings.Split(text, "\n")
	}
	return smtp.Reply{Code: int(code), Enhanced: smtp.EnhancedCode(enh), Lines: lines}
}
