package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/dsn"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// putLater lets the DSN notifier, which the queue's configuration needs,
// store its reports in the queue that is opened after it. Reports about
// messages the queue finishes while it starts (recovery) wait until the
// queue is set.
type putLater struct {
	ready chan struct{}
	put   dsn.PutFunc
}

func newPutLater() *putLater { return &putLater{ready: make(chan struct{})} }

// set makes put the queue's Put and releases waiting reports.
func (p *putLater) set(put dsn.PutFunc) {
	p.put = put
	close(p.ready)
}

// Put stores a report through the queue once it is set.
func (p *putLater) Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	select {
	case <-p.ready:
		return p.put(ctx, env, body)
	case <-ctx.Done():
		return "", fmt.Errorf("queue not open yet: %w", ctx.Err())
	}
}

// reportPutFunc returns how the DSN stage stores its reports in q: with
// PutReport when the backend keeps room for generated reports on a full
// spool (the segment log), else with Put.
func reportPutFunc(q queue.Store) dsn.PutFunc {
	if ri, ok := q.(queue.ReportIntake); ok {
		return ri.PutReport
	}
	return q.Put
}

// newNotifier builds the DSN stage (RFC 3461/3464): failure, delay and
// relayed reports to the envelope sender, queued like any message with the
// null reverse path.
func newNotifier(cfg config.Config, logger *slog.Logger, put dsn.PutFunc) (*dsn.Notifier, error) {
	warn := cfg.Queue.DelayWarning
	if warn == 0 {
		warn = -1 // queue.delay_warning = 0 turns delay reports off
	}
	maxReturn := cfg.DSN.MaxReturnSize
	if maxReturn == 0 {
		maxReturn = -1 // dsn.max_return_size = 0: return headers only
	}
	return dsn.NewNotifier(dsn.NotifierConfig{
		ReportingMTA:  cfg.Hostname,
		Postmaster:    cfg.DSN.Postmaster,
		MaxReturnSize: maxReturn,
		DelayWarning:  warn,
		Lifetime:      cfg.Queue.Lifetime,
		Logger:        logger,
	}, put)
}
