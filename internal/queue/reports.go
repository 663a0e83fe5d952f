package queue

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/smtp"
)

// ReportIntake is offered by a backend that keeps room for the delivery
// status notifications Ferry generates itself: PutReport stores such a
// report as Intake.Put stores a message, but may use space that Put keeps
// back for delivery records, so that a report replacing a failed message
// is not refused like new mail on a full spool. The segment log offers it;
// callers fall back to Put when a backend does not.
type ReportIntake interface {
	PutReport(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error)
}

// The segment log keeps room for its reports.
var _ ReportIntake = (*Queue)(nil)

// PutReport stores a report Ferry generated (a DSN, queued with the null
// reverse path) like Put, except that it may use the first half of
// Config.Reserve: it is refused with ErrSpoolFull only when storing it
// would leave less than half the reserve for delivery records. A failure
// report replaces the failed message, whose done record follows it and
// whose space returns with its segment.
func (q *Queue) PutReport(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	return q.put(ctx, env, body, true)
}

// reportFloor is the segment space a request must leave free: the whole
// reserve for new mail, half of it for a generated report.
func (q *Queue) reportFloor(r *request) int64 {
	if r.report {
		return q.cfg.Reserve / 2
	}
	return q.cfg.Reserve
}

// unreported is a finished message whose report the DSN stage could not
// queue (Event.Keep): its outcomes are recorded, no done record is written,
// and EventFinished is delivered again until the report is queued.
type unreported struct {
	m         *msg
	recovered bool
}

// reportWait holds the finished messages that wait for their report to be
// queued, and paces the retries: after one second, doubling up to every
// 30 s, and at once when segments are removed (space returned).
type reportWait struct {
	ep   *maillog.Episode
	kick chan struct{}
	// Guarded by Queue.mu.
	msgs    []unreported
	running bool
	// delay is the wait before the next round, from the episode's
	// backoff.
	delay time.Duration
}

func newReportWait(l *slog.Logger) reportWait {
	return reportWait{
		ep: maillog.NewEpisode(l, slog.LevelWarn,
			"queue: delivery reports cannot be queued; the failed messages are kept until they are",
			"queue: delivery reports still cannot be queued; failed messages kept",
			"queue: delivery reports queued; the kept messages are removed", nil),
		kick: make(chan struct{}, 1),
	}
}

// keepUnreported keeps m, whose report could not be queued (err says why),
// instead of writing its done record, and starts the retries when none run.
func (q *Queue) keepUnreported(m *msg, recovered bool, err error) {
	q.mu.Lock()
	if q.msgs[m.id] != m || q.closed {
		// Deleted meanwhile, or stopping: a queue that stops with m
		// not done delivers the event again at the next Open.
		q.mu.Unlock()
		return
	}
	q.reports.msgs = append(q.reports.msgs, unreported{m, recovered})
	q.reports.delay = q.reports.ep.Fail(err, "id", m.id, "messages", len(q.reports.msgs))
	if q.reports.running {
		q.mu.Unlock()
		return
	}
	q.reports.running = true
	q.wg.Add(1)
	delay := q.reports.delay
	q.mu.Unlock()
	go func() {
		defer q.wg.Done()
		q.retryReports(delay)
	}()
}

// retryReports delivers EventFinished again for the kept messages, oldest
// first, after wait and then with the episode's backoff, until every
// report is queued or the queue closes. A round stops at the first report
// that cannot be queued again (the spool is still full), so that a long
// list does not read every message each time.
func (q *Queue) retryReports(wait time.Duration) {
	select {
	case <-q.reports.kick: // space freed before any report waited
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-t.C:
		case <-q.reports.kick:
		}
		q.mu.Lock()
		todo := q.reports.msgs
		q.reports.msgs = nil
		q.mu.Unlock()
		for i, u := range todo {
			if !q.finishMessageAgain(u.m, u.recovered) {
				continue
			}
			// Kept again (appended by keepUnreported): the rest wait
			// behind it, in their order.
			q.mu.Lock()
			q.reports.msgs = append(q.reports.msgs, todo[i+1:]...)
			q.mu.Unlock()
			break
		}
		q.mu.Lock()
		if len(q.reports.msgs) == 0 {
			q.reports.running = false
			q.reports.ep.OK("messages", len(todo))
			q.mu.Unlock()
			return
		}
		delay := q.reports.delay
		q.mu.Unlock()
		t.Reset(delay)
	}
}

// reportSpace tells the retries that segments were removed: a report that
// did not fit may fit now.
func (q *Queue) reportSpace() {
	select {
	case q.reports.kick <- struct{}{}:
	default:
	}
}
