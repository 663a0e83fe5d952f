package deliver

import (
	"context"
	"fmt"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// statusWord is the Postfix log word for a recipient state.
func statusWord(s queue.RcptState) string {
	switch s {
	case queue.Sent:
		return "sent"
	case queue.Failed:
		return "bounced"
	}
	return "deferred"
}

// reportAll reports every recipient of an item with the same outcome.
func (a *Agent) reportAll(ctx context.Context, it queue.Item, state queue.RcptState, rep smtp.Reply, relay, plan string) {
	for _, idx := range it.Rcpts {
		a.report(ctx, it, idx, state, rep, relay, plan)
	}
}

// report records one recipient's outcome with the queue and writes the
// Postfix-style log line:
//
//	ID: to=<rcpt>, relay=host[ip]:port, delay=1.2, plan=(...), status=sent (250 2.0.0 Ok)
func (a *Agent) report(ctx context.Context, it queue.Item, idx int, state queue.RcptState, rep smtp.Reply, relay, plan string) {
	now := a.cfg.Now()
	env := it.Env
	to := ""
	if idx >= 0 && idx < len(env.Rcpts) {
		to = env.Rcpts[idx].Addr.Address()
	}
	delay := now.Sub(env.Arrival)
	if env.Arrival.IsZero() {
		delay = 0
	}
	status := statusWord(state)
	line := fmt.Sprintf("%s: to=<%s>, relay=%s, delay=%.2f", env.ID, to, relay, delay.Seconds())
	if plan != "" {
		line += ", plan=(" + plan + ")"
	}
	line += ", status=" + status + " (" + rep.String() + ")"
	a.log.Info(line, "event", status, "id", env.ID, "to", to, "relay", relay,
		"delay", delay.Seconds(), "plan", plan, "status", status, "reply", rep.String())
	remote := relay
	if remote == "none" {
		remote = ""
	}
	err := a.q.Update(ctx, env.ID, idx, queue.Result{State: state, Reply: rep, RemoteMTA: remote, At: now})
	if err != nil {
		a.log.Error("deliver: recording outcome failed", "id", env.ID, "to", to, "err", err)
	}
}
