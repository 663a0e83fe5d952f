package pgqueue

import (
	"context"
	"sync"
	"time"
)

// notifyGap is the least time between two NOTIFYs of new mail from one node.
// The first Put after a quiet spell is announced at once; the Puts committed
// during the gap share the next NOTIFY, so idle nodes are woken (and look
// for work) at most about 50 times a second per busy node, however many
// group commits it makes.
const notifyGap = 20 * time.Millisecond

// finalNotifyTimeout bounds the last NOTIFY sent while the queue closes.
const finalNotifyTimeout = 2 * time.Second

// startPuts starts the committers and the notifier that announces their
// commits. The notifier ends after the committers, so the Puts committed
// while the queue closes are announced too.
func (q *Queue) startPuts() {
	var committers sync.WaitGroup
	f := &inFlight{ended: make(chan struct{})}
	for range q.cfg.Committers {
		committers.Add(1)
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			defer committers.Done()
			q.commitLoop(f)
		}()
	}
	done := make(chan struct{})
	q.wg.Add(2)
	go func() { defer q.wg.Done(); committers.Wait(); close(done) }()
	go func() { defer q.wg.Done(); q.notifyLoop(done) }()
}

// notePut tells the notifier that Puts were committed.
func (q *Queue) notePut() {
	select {
	case q.putNotify <- struct{}{}:
	default: // a NOTIFY is already due
	}
}

// notifyLoop sends a NOTIFY after Puts were committed, at most one per
// notifyGap, until done is closed (the committers have stopped); then it
// sends the last one still due. The NOTIFY is a transaction of its own,
// after the Puts' commit: a node that misses it (the NOTIFY failed, or this
// node died between the two) finds the work at its next look, at most a
// lease timeout later; nothing stored depends on it.
func (q *Queue) notifyLoop(done <-chan struct{}) {
	for {
		select {
		case <-q.putNotify:
			ctx, cancel := q.opCtx(context.Background())
			q.sendPutNotify(ctx)
			cancel()
			t := time.NewTimer(notifyGap)
			select {
			case <-t.C:
			case <-done:
			}
			t.Stop()
		case <-done:
			select {
			case <-q.putNotify:
				ctx, cancel := context.WithTimeout(context.Background(), finalNotifyTimeout)
				q.sendPutNotify(ctx)
				cancel()
			default:
			}
			return
		}
	}
}

// sendPutNotify wakes the idle nodes (this one included, through its
// listener) to look for the new work.
func (q *Queue) sendPutNotify(ctx context.Context) {
	if _, err := q.pool.Exec(ctx, "SELECT pg_notify($1, 'put')", notifyChannel); err != nil {
		q.log.Warn("queue: NOTIFY of new mail failed; other nodes find it at their next look", "db", q.where, "err", err)
	}
}
