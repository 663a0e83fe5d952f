package pgqueue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// walkPage is how many messages Walk reads per query.
const walkPage = 200

// Resolve returns the one queued message ID that starts with prefix.
func (q *Queue) Resolve(prefix string) (string, error) {
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	if prefix == "" {
		return "", fmt.Errorf("%w: %q", queue.ErrNotFound, prefix)
	}
	rows, err := q.pool.Query(ctx, `SELECT id FROM ferry_messages WHERE starts_with(id, $1) ORDER BY id = $1 DESC, id LIMIT 2`, prefix)
	if err != nil {
		return "", fmt.Errorf("queue: resolve %q: %w", prefix, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("queue: resolve %q: %w", prefix, err)
	}
	switch {
	case len(ids) == 0:
		return "", fmt.Errorf("%w: %q", queue.ErrNotFound, prefix)
	case ids[0] == prefix:
		return prefix, nil
	case len(ids) > 1:
		return "", fmt.Errorf("%w: %q", queue.ErrAmbiguous, prefix)
	}
	return ids[0], nil
}

// Walk calls fn for every queued message matching f, in ID order, until fn
// returns false; it reads the queue in pages, so messages queued meanwhile
// may or may not be seen.
func (q *Queue) Walk(f queue.Filter, fn func(*queue.MessageInfo) bool) error {
	where, args := walkFilter(f)
	after := ""
	for {
		ctx, cancel := q.opCtx(context.Background())
		rows, err := q.pool.Query(ctx, `SELECT id FROM ferry_messages m WHERE id > $1`+where+` ORDER BY id LIMIT `+fmt.Sprint(walkPage),
			append([]any{after}, args...)...)
		var ids []string
		if err == nil {
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		var infos []*queue.MessageInfo
		if err == nil && len(ids) > 0 {
			infos, err = q.infos(ctx, q.pool, ids, false)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("queue: walk PostgreSQL at %s: %w", q.where, err)
		}
		for _, m := range infos {
			if !queue.MatchEnvelope(m.Env, f) {
				continue
			}
			if !fn(m) {
				return nil
			}
		}
		if len(ids) < walkPage {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// walkFilter turns the filters that need no envelope into SQL conditions
// on m (arguments from $2).
func walkFilter(f queue.Filter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args)+1)
	}
	if f.MinAge > 0 {
		conds = append(conds, "m.arrival <= now() - "+arg(micros(f.MinAge))+" * interval '1 microsecond'")
	}
	if f.MaxAge > 0 {
		conds = append(conds, "m.arrival >= now() - "+arg(micros(f.MaxAge))+" * interval '1 microsecond'")
	}
	if f.Hop != "" {
		conds = append(conds, "EXISTS (SELECT 1 FROM ferry_groups g WHERE g.msg_id = m.id AND g.hop = "+arg(smtp.DomainKey(f.Hop))+")")
	}
	switch f.State {
	case queue.HeldState:
		conds = append(conds, "m.held")
	case queue.ActiveState:
		conds = append(conds, `NOT m.held AND (EXISTS (SELECT 1 FROM ferry_recipients r WHERE r.msg_id = m.id AND r.state IN (0, 3) AND r.next_at <= now())
	OR EXISTS (SELECT 1 FROM ferry_groups g WHERE g.msg_id = m.id AND g.lease_until > now()))`)
	case queue.DeferredState:
		conds = append(conds, "EXISTS (SELECT 1 FROM ferry_recipients r WHERE r.msg_id = m.id AND r.state = 3)")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " AND " + strings.Join(conds, " AND "), args
}

// Show returns one message with every recipient's state, last reply and
// history, and the node holding a lease on it.
func (q *Queue) Show(id string) (*queue.MessageInfo, error) {
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	infos, err := q.infos(ctx, q.pool, []string{id}, true)
	if err != nil {
		return nil, fmt.Errorf("queue: show %s: %w", id, err)
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	return infos[0], nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// infos describes the messages ids, in ID order, skipping those gone.
func (q *Queue) infos(ctx context.Context, db querier, ids []string, history bool) ([]*queue.MessageInfo, error) {
	var out []*queue.MessageInfo
	byID := map[string]*queue.MessageInfo{}
	var (
		id       string
		envBytes []byte
		size     int64
		held     bool
	)
	rows, _ := db.Query(ctx, `SELECT id, envelope, size, held FROM ferry_messages WHERE id = ANY($1) ORDER BY id`, ids)
	_, err := pgx.ForEachRow(rows, []any{&id, &envBytes, &size, &held}, func() error {
		env, err := queue.DecodeEnvelope(id, envBytes)
		if err != nil {
			return fmt.Errorf("envelope of %s: %w", id, err)
		}
		m := &queue.MessageInfo{ID: id, Env: env, Size: size, Held: held, Body: q.bodyOpener(id)}
		out = append(out, m)
		byID[id] = m
		return nil
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	var (
		idx, attempts int32
		hop           string
		state         int16
		next          time.Time
		node          *string
		epoch         int64
		until         *time.Time
		leased        bool
	)
	rows, _ = db.Query(ctx, `SELECT r.msg_id, r.idx, r.hop, r.state, r.attempts, r.next_at,
	g.lease_node, g.lease_epoch, g.lease_until, coalesce(g.lease_until > now(), false)
FROM ferry_recipients r JOIN ferry_groups g ON g.msg_id = r.msg_id AND g.hop = r.hop
WHERE r.msg_id = ANY($1) ORDER BY r.msg_id, r.idx`, ids)
	_, err = pgx.ForEachRow(rows, []any{&id, &idx, &hop, &state, &attempts, &next, &node, &epoch, &until, &leased}, func() error {
		m := byID[id]
		if m == nil {
			return nil
		}
		st := queue.RcptStatus{Index: int(idx), Hop: hop, State: queue.RcptState(state), Attempts: int(attempts)}
		if int(idx) < len(m.Env.Rcpts) {
			st.Addr = m.Env.Rcpts[idx].Addr
		}
		final := st.State == queue.Sent || st.State == queue.Failed
		if !final {
			st.Next = next
		}
		if leased && !final && node != nil {
			st.LeasedBy, st.LeaseEpoch, st.LeaseExpires = *node, uint64(epoch), *until
		}
		m.Rcpts = append(m.Rcpts, st)
		return nil
	})
	if err != nil || !history {
		return out, err
	}
	var (
		at             time.Time
		code           int32
		enh, text, mta string
		nextAt         *time.Time
		expired        bool
	)
	rows, _ = db.Query(ctx, `SELECT msg_id, idx, at, state, code, enhanced, reply, remote_mta, next_at, expired
FROM ferry_attempts WHERE msg_id = ANY($1) ORDER BY seq`, ids)
	_, err = pgx.ForEachRow(rows, []any{&id, &idx, &at, &state, &code, &enh, &text, &mta, &nextAt, &expired}, func() error {
		m := byID[id]
		if m == nil || int(idx) >= len(m.Rcpts) {
			return nil
		}
		st := &m.Rcpts[idx]
		a := queue.Attempt{At: at, State: queue.RcptState(state), Reply: replyOf(code, enh, text), RemoteMTA: mta, Expired: expired}
		if nextAt != nil {
			a.Next = *nextAt
		}
		st.History = append(st.History, a)
		st.LastReply, st.RemoteMTA, st.LastAttempt, st.Expired = a.Reply, a.RemoteMTA, a.At, a.Expired
		return nil
	})
	return out, err
}
