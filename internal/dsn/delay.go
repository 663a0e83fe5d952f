package dsn

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Delay reports (RFC 3464 §2.3.3 Action: delayed): one per message and
// warning threshold. Where the queue keeps the record of reports made
// (queue.Event.PutReported: the shared PostgreSQL queue keeps it across
// nodes and restarts), the report and that record are committed together;
// otherwise the Notifier remembers warned messages in memory.

// delayed sends the delay report of a message once.
func (n *Notifier) delayed(ev queue.Event) {
	if n.cfg.DelayWarning < 0 {
		return // delay reports are switched off
	}
	now := n.cfg.Clock()
	if now.Sub(ev.Env.Arrival) < n.cfg.DelayWarning {
		return
	}
	if ev.Env.From.IsNull() {
		// Never a report about a report (RFC 3461 §6.2); say so once
		// (per process: only the log line is at stake).
		if n.claimWarning(ev.ID, now) {
			n.suppressed(ev.ID, Delayed, statusAddrs(ev.Rcpts), "null reverse path")
		}
		return
	}
	var rcpts []Recipient
	var never []string
	for _, st := range ev.Rcpts {
		if st.State != queue.Deferred {
			continue
		}
		if !Requested(rcptNotify(ev.Env, st.Index), Delayed) {
			never = append(never, st.Addr.Address())
			continue
		}
		rc := fromStatus(st)
		rc.WillRetryUntil = ev.Env.Arrival.Add(n.cfg.Lifetime)
		rcpts = append(rcpts, rc)
	}
	if len(rcpts) == 0 {
		if len(never) > 0 {
			n.suppressed(ev.ID, Delayed, never, "NOTIFY excludes delay")
		}
		return
	}
	if ev.PutReported == nil {
		// No record in the queue: remember in memory.
		if !n.claimWarning(ev.ID, now) {
			n.log.Debug("dsn-suppressed", "id", ev.ID, "kind", Delayed.String(), "reason", "delay report already sent")
			return
		}
		if err := n.send(n.put, ev.ID, ev.Env, Delayed, rcpts, ev.Body); err != nil {
			n.logNotQueued(ev.ID, Delayed, rcpts, err)
			n.forget(ev.ID) // let a later deferral try again
		}
		return
	}
	// The queue records the report as made in the commit that stores it,
	// across nodes and restarts; looking first spares building it again.
	tag := n.delayTag()
	made, err := ev.Reported(tag)
	if err != nil {
		n.log.Warn("dsn: cannot tell whether the delay report was made; a later deferral tries again", "id", ev.ID, "err", err)
		return
	}
	put := func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
		return ev.PutReported(ctx, tag, env, body)
	}
	if !made {
		err = n.send(put, ev.ID, ev.Env, Delayed, rcpts, ev.Body)
	}
	switch {
	case made || errors.Is(err, queue.ErrReported):
		n.log.Debug("dsn-suppressed", "id", ev.ID, "kind", Delayed.String(), "reason", "delay report already sent")
	case err != nil:
		n.logNotQueued(ev.ID, Delayed, rcpts, err) // a later deferral tries again
	}
}

// delayTag names the delay report of the configured warning threshold in
// the queue's record of reports made (queue.Event.PutReported).
func (n *Notifier) delayTag() string { return "delay:" + n.cfg.DelayWarning.String() }

// claimWarning marks message id as warned about in memory; it reports false
// when it already was.
func (n *Notifier) claimWarning(id string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.warned[id]; ok {
		return false
	}
	if len(n.warned) >= maxWarned {
		// Messages deleted by the administrator never finish; drop
		// entries older than any message can live.
		for k, t := range n.warned {
			if now.Sub(t) > n.cfg.Lifetime {
				delete(n.warned, k)
			}
		}
	}
	n.warned[id] = now
	return true
}

// forget drops message id from the warned set.
func (n *Notifier) forget(id string) {
	n.mu.Lock()
	delete(n.warned, id)
	n.mu.Unlock()
}
