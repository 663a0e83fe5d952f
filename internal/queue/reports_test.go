package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

// TestReportUsesHalfTheReserve fills a real 4 MiB tmpfs until new mail is
// refused: a generated report (PutReport) must still be taken, out of the
// first half of the reserve, while new mail stays refused; once only half
// the reserve is left, reports are refused too (ErrSpoolFull), without
// counting as refused mail, and the outcomes of every message can still be
// recorded in what is left.
func TestReportUsesHalfTheReserve(t *testing.T) {
	q := nearlyFullQueue(t, nil)
	ctx := context.Background()
	var ids []string
	for i := 0; ; i++ {
		if i == 400 {
			t.Fatal("400 messages of 16 KiB stored in two 1 MiB segments")
		}
		id, err := q.Put(ctx, testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(i, 16<<10)))
		if errors.Is(err, ErrSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Small messages until even they are refused: about the reserve is
	// left.
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("200 small messages stored in a full spool")
		}
		id, err := q.Put(ctx, testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(500+i, 300)))
		if errors.Is(err, ErrSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	refused := q.Stats().Refused
	// 4 KiB reports fit until half the reserve is left.
	reports := 0
	for ; ; reports++ {
		if reports == 20 {
			t.Fatal("20 reports of 4 KiB stored in a reserve of 64 KiB")
		}
		_, err := q.PutReport(ctx, testEnv("", "s@example.org"), bytes.NewReader(bodyFor(1000+reports, 4<<10)))
		if errors.Is(err, ErrSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Put(ctx, testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(2000+reports, 300))); !errors.Is(err, ErrSpoolFull) {
			t.Fatalf("new mail after %d reports: %v, want ErrSpoolFull", reports+1, err)
		}
		refused++
	}
	if reports < 6 || reports > 8 {
		t.Errorf("%d reports of 4 KiB fitted in the first half of a 64 KiB reserve, want 6 to 8", reports)
	}
	if st := q.Stats(); st.Refused != refused {
		t.Errorf("Refused = %d, want %d (a refused report is not refused mail)", st.Refused, refused)
	}
	for _, id := range ids {
		if err := q.Update(ctx, nil, id, 0, Result{State: Sent, Reply: smtp.NewReply(250, "2.0.0", "ok")}); err != nil {
			t.Fatalf("recording the outcome of %s after the reports: %v", id, err)
		}
	}
	t.Logf("%d messages, then %d reports of 4 KiB in the reserve; every outcome recorded after them", len(ids), reports)
}

// TestKeepUntilReported: a finished message whose report cannot be queued
// (OnEvent calls Event.Keep) stays queued with its outcome, is offered
// again (Retried) until its report is queued, and only then removed; a
// restart while it waits delivers the event again (Recovered).
func TestKeepUntilReported(t *testing.T) {
	dir := t.TempDir()
	var logs logBuffer
	var mu sync.Mutex
	refuse := 2 // the first two offers cannot queue the report
	var offers []Event
	cfg := testConfig(dir, nil, &logs)
	cfg.OnEvent = func(ev Event) {
		if ev.Kind != EventFinished {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		offers = append(offers, ev)
		if ev.Keep == nil {
			t.Error("EventFinished without Keep")
			return
		}
		if refuse > 0 {
			refuse--
			ev.Keep(fmt.Errorf("report: %w", ErrSpoolFull))
		}
	}
	offered := func() []Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]Event(nil), offers...)
	}
	q := mustOpen(t, cfg)
	ctx := context.Background()
	id, err := q.Put(ctx, testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(1, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	fail := Result{State: Failed, Reply: smtp.NewReply(550, "5.1.1", "no such user")}
	if err := q.Update(ctx, nil, id, 0, fail); err != nil {
		t.Fatal(err)
	}
	// Kept: still queued, its recipient failed, its outcome recorded.
	m, err := q.Show(id)
	if err != nil {
		t.Fatalf("Show of a message kept for its report: %v", err)
	}
	if m.Rcpts[0].State != Failed || m.Rcpts[0].LastReply.Code != 550 {
		t.Errorf("kept message's recipient: %+v, want failed with 550", m.Rcpts[0])
	}
	waitState(t, "the report to be queued on the third offer", func() bool {
		_, err := q.Show(id)
		return errors.Is(err, ErrNotFound)
	})
	evs := offered()
	if len(evs) != 3 || evs[0].Retried || !evs[1].Retried || !evs[2].Retried {
		t.Errorf("offers %d (retried %v), want 3: first new, then retried", len(evs), retriedFlags(evs))
	}
	log := logs.String()
	if c := strings.Count(log, "queue: delivery reports cannot be queued"); c != 1 {
		t.Errorf("the episode started %d times in the log, want once:\n%s", c, log)
	}
	if !strings.Contains(log, "queue: delivery reports queued") {
		t.Errorf("the end of the episode is not logged:\n%s", log)
	}

	// A restart while a message waits for its report offers it again.
	mu.Lock()
	refuse = 1 << 20
	mu.Unlock()
	id2, err := q.Put(ctx, testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(2, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Update(ctx, nil, id2, 0, fail); err != nil {
		t.Fatal(err)
	}
	before := len(offered())
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	refuse = 0
	mu.Unlock()
	q = mustOpen(t, cfg)
	defer q.Close()
	waitState(t, "the kept message's report after the restart", func() bool {
		_, err := q.Show(id2)
		return errors.Is(err, ErrNotFound)
	})
	evs = offered()[before:]
	last := evs[len(evs)-1]
	if last.ID != id2 || !last.Recovered {
		t.Errorf("after the restart: event %s recovered %v, want %s recovered", last.ID, last.Recovered, id2)
	}
}

func retriedFlags(evs []Event) []bool {
	var f []bool
	for _, e := range evs {
		f = append(f, e.Retried)
	}
	return f
}

// TestReportMadeSurvivesRestart: a delay report made through
// Event.PutReported is recorded in the spool, so that after a restart (and
// after its records are copied forward) the message's next deferral finds
// it made and no second report is stored.
func TestReportMadeSurvivesRestart(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	var events eventLog
	q := schedQueue(t, dir, clock, func(c *Config) { c.OnEvent = events.add })
	ctx := context.Background()
	id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(1, 100))
	// deferOnce defers the message's recipient once and returns the delay
	// event.
	deferOnce := func(q *Queue) Event {
		t.Helper()
		if err := q.RetryNow(ctx, id); err != nil {
			t.Fatal(err)
		}
		l := mustLease(t, q)
		if err := q.Update(ctx, l, id, 0, Result{State: Deferred, Reply: smtp.NewReply(451, "4.3.0", "later")}); err != nil {
			t.Fatal(err)
		}
		q.Release(l)
		events.mu.Lock()
		defer events.mu.Unlock()
		for i := len(events.ev) - 1; i >= 0; i-- {
			if ev := events.ev[i]; ev.Kind == EventDelayed && ev.ID == id {
				events.ev = nil
				return ev
			}
		}
		t.Fatal("no delay event after a deferral")
		return Event{}
	}
	ev := deferOnce(q)
	rid, err := ev.PutReported(ctx, "delay:4h0m0s", testEnv("", "s@example.org"), bytes.NewReader(bodyFor(2, 300)))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ctx, rid); err != nil { // only the original stays queued
		t.Fatal(err)
	}
	for round, what := range []string{"a restart", "a copy forward and a restart"} {
		if round == 1 {
			// Fill segments until the original's records are copied
			// forward out of the oldest one.
			q.cfg.CopyForwardLag = 1
			for i := 0; q.Stats().CopiedForward == 0; i++ {
				if i == 2000 {
					t.Fatal("records never copied forward")
				}
				other := putBody(t, q, testEnv("s@example.org", "x@example.com"), bodyFor(100+i, 4<<10))
				if err := q.Delete(ctx, other); err != nil {
					t.Fatal(err)
				}
				q.gcStep()
			}
		}
		q.Close()
		q = schedQueue(t, dir, clock, func(c *Config) { c.OnEvent = events.add })
		ev = deferOnce(q)
		if made, err := ev.Reported("delay:4h0m0s"); !made || err != nil {
			t.Fatalf("after %s: Reported = %v, %v; want the report made before", what, made, err)
		}
		if _, err := ev.PutReported(ctx, "delay:4h0m0s", testEnv("", "s@example.org"), bytes.NewReader(bodyFor(3, 300))); !errors.Is(err, ErrReported) {
			t.Fatalf("after %s: second report stored (%v)", what, err)
		}
	}
	q.Close()
}
