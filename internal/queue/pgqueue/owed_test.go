package pgqueue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
	"github.com/ferrymta/ferry/internal/smtp"
)

// owedEvents is an OnEvent that cannot queue a failure report while refuse
// is set (it calls Keep, as the DSN stage does) and records every finished
// event it sees.
type owedEvents struct {
	mu       sync.Mutex
	refuse   bool
	finished []queue.Event
	seen     chan queue.Event
}

func (o *owedEvents) onEvent(ev queue.Event) {
	if ev.Kind != queue.EventFinished {
		return
	}
	o.mu.Lock()
	refuse := o.refuse
	o.finished = append(o.finished, ev)
	o.mu.Unlock()
	if refuse && ev.Keep != nil {
		ev.Keep(errors.New("report refused for the test"))
	}
	o.seen <- ev
}

func (o *owedEvents) setRefuse(v bool) {
	o.mu.Lock()
	o.refuse = v
	o.mu.Unlock()
}

// failAll leases the message's group and fails its recipient permanently.
func failAll(t *testing.T, q *Queue, id string) {
	t.Helper()
	l := queuetest.Lease(t, q)
	for _, it := range l.Items {
		for _, r := range it.Rcpts {
			res := queue.Result{State: queue.Failed, Reply: smtp.Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"no such user"}}, At: time.Now()}
			if err := q.Update(context.Background(), l, it.Env.ID, r, res); err != nil {
				t.Fatal(err)
			}
		}
	}
	q.Release(l)
}

// TestOwedReportKeptAndRetried: a finished message whose failure report
// cannot be queued stays in the shared queue, marked, with nothing left to
// deliver; a node that opens the queue later (after a restart) finishes it
// again with Retried set once the report can be queued, and only then is
// it removed.
func TestOwedReportKeptAndRetried(t *testing.T) {
	url := newDB(t)
	ev := &owedEvents{refuse: true, seen: make(chan queue.Event, 16)}
	a, err := Open(context.Background(), Config{URL: url, Node: "a", Logger: quiet(), OnEvent: ev.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	id := queuetest.Put(t, a, queuetest.Env("s@example.org", "r@example.net"), queuetest.Body("owed", 500))
	failAll(t, a, id)
	first := waitEvent(t, ev.seen)
	if first.Keep == nil {
		t.Fatal("EventFinished carries no Keep: the shared queue cannot keep an owed report")
	}
	if first.ID != id || first.Retried {
		t.Fatalf("first finished event %+v, want %s not retried", first, id)
	}
	// Kept: still there, every recipient failed, nothing due.
	info, err := a.Show(id)
	if err != nil {
		t.Fatalf("kept message gone: %v", err)
	}
	if info.Rcpts[0].State != queue.Failed {
		t.Errorf("kept recipient state %v, want failed", info.Rcpts[0].State)
	}
	var owed bool
	if err := a.pool.QueryRow(context.Background(), `SELECT report_owed FROM ferry_messages WHERE id = $1`, id).Scan(&owed); err != nil || !owed {
		t.Fatalf("report_owed = %v, %v; want true", owed, err)
	}
	// While the report cannot be queued, the retries keep it.
	again := waitEvent(t, ev.seen)
	if again.ID != id || !again.Retried {
		t.Fatalf("retried event %+v, want %s retried", again, id)
	}
	if _, err := a.Show(id); err != nil {
		t.Fatalf("message removed though its report is still owed: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Another node (or the same after a restart) finds it at start.
	ev.setRefuse(false)
	b := openQueue(t, Config{URL: url, Node: "b", OnEvent: ev.onEvent})
	for {
		e := waitEvent(t, ev.seen)
		if e.ID == id && e.Retried && e.Keep != nil {
			break
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := b.Show(id); errors.Is(err, queue.ErrNotFound) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("message still queued a minute after its report was queued")
		}
		time.Sleep(20 * time.Millisecond) // polls a database state
	}
}

// waitEvent returns the next event or fails the test after a minute.
func waitEvent(t *testing.T, ch chan queue.Event) queue.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(time.Minute):
		t.Fatal("no finished event within a minute")
		return queue.Event{}
	}
}
