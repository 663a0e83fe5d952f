package dsn

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// queueFixture is a real queue whose events feed a Notifier that puts its
// reports back into the same queue, as the lead wires them.
type queueFixture struct {
	q       *queue.Queue
	n       *Notifier
	log     *syncBuffer
	mu      sync.Mutex
	now     time.Time
	reports []putRecord // every report the Notifier queued
}

func (f *queueFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func newQueueFixture(t *testing.T) *queueFixture {
	t.Helper()
	f := &queueFixture{log: &syncBuffer{}, now: tArrival.Add(5 * time.Hour)}
	logger := slog.New(slog.NewTextHandler(f.log, nil))
	var q *queue.Queue
	// recorded wraps a put so that every report it stores is kept in
	// f.reports.
	recorded := func(put PutFunc) PutFunc {
		return func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
			b, err := io.ReadAll(body)
			if err != nil {
				return "", err
			}
			id, err := put(ctx, env, bytes.NewReader(b))
			if err == nil {
				f.mu.Lock()
				f.reports = append(f.reports, putRecord{env: *env, body: b})
				f.mu.Unlock()
			}
			return id, err
		}
	}
	n, err := NewNotifier(NotifierConfig{ReportingMTA: "relay.example.com", Clock: f.clock, Logger: logger},
		recorded(func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
			return q.Put(ctx, env, body)
		}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := queue.DefaultConfig(t.TempDir())
	cfg.Clock, cfg.Logger = f.clock, logger
	cfg.OnEvent = func(ev queue.Event) {
		if put := ev.PutReported; put != nil { // delay reports go this way
			ev.PutReported = func(ctx context.Context, tag string, env *smtp.Envelope, body io.Reader) (string, error) {
				return recorded(func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
					return put(ctx, tag, env, body)
				})(ctx, env, body)
			}
		}
		n.OnEvent(ev)
	}
	cfg.SegmentSize, cfg.GCInterval = 1<<20, time.Hour
	q, err = queue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	f.q, f.n = q, n
	return f
}

// deliverOnce leases the next due work for hop and reports every recipient
// with the outcome chosen by result.
func (f *queueFixture) deliverOnce(t *testing.T, hop string, result func(smtp.Path) queue.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 10 {
		l, err := f.q.Lease(ctx)
		if err != nil {
			t.Fatalf("Lease: %v", err)
		}
		for _, it := range l.Items {
			for _, i := range it.Rcpts {
				res := queue.Result{State: queue.Sent, Reply: reply250, At: f.clock()} // a report: delivered
				if l.Hop == hop {
					res = result(it.Env.Rcpts[i].Addr)
				}
				if err := f.q.Update(ctx, nil, it.Env.ID, i, res); err != nil {
					t.Fatalf("Update: %v", err)
				}
			}
		}
		f.q.Release(l)
		if l.Hop == hop {
			return
		}
	}
	t.Fatalf("no lease for hop %s", hop)
}

// reportsIn returns the reports the Notifier queued so far, keyed by
// recipient and queue-assigned ID order.
func (f *queueFixture) reportsIn(t *testing.T) []putRecord {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]putRecord(nil), f.reports...)
}

// TestThroughQueue runs a failure and a delay through a real queue: the
// reports are stored in the queue with the null sender, addressed to the
// original sender, and parse.
func TestThroughQueue(t *testing.T) {
	f := newQueueFixture(t)
	env := &smtp.Envelope{From: path("alice", "example.net"), Arrival: tArrival, EnvID: "E1",
		Rcpts: []smtp.Recipient{{Addr: path("bob", "example.org")}, {Addr: path("carol", "example.org")}}}
	id, err := f.q.Put(context.Background(), env, strings.NewReader(originalASCII))
	if err != nil {
		t.Fatal(err)
	}
	// First attempt: bob deferred (past the warning time), carol sent.
	f.deliverOnce(t, "example.org", func(p smtp.Path) queue.Result {
		if p.LocalPart == "bob" {
			return queue.Result{State: queue.Deferred, Reply: reply451, RemoteMTA: "mx.example.org[192.0.2.1]:25", At: f.clock()}
		}
		return queue.Result{State: queue.Sent, Reply: reply250, RemoteMTA: "mx.example.org[192.0.2.1]:25", At: f.clock()}
	})
	reports := f.reportsIn(t)
	if len(reports) != 1 {
		t.Fatalf("%d reports after the deferral, want 1 delay report", len(reports))
	}
	// Later: bob fails for good.
	f.mu.Lock()
	f.now = f.now.Add(2 * time.Hour)
	f.mu.Unlock()
	f.deliverOnce(t, "example.org", func(smtp.Path) queue.Result {
		return queue.Result{State: queue.Failed, Reply: reply550, RemoteMTA: "mx.example.org[192.0.2.1]:25", At: f.clock()}
	})
	reports = f.reportsIn(t)
	if len(reports) != 2 {
		t.Fatalf("%d reports, want a delay and a failure report", len(reports))
	}
	var kinds []string
	for _, rep := range reports {
		key := rep.env.ID
		if !rep.env.From.IsNull() || len(rep.env.Rcpts) != 1 || rep.env.Rcpts[0].Addr.Address() != "alice@example.net" {
			t.Errorf("report %s queued from %s to %v", key, rep.env.From, rep.env.Rcpts)
		}
		if key == "" || key == id {
			t.Errorf("report has queue ID %q", key)
		}
		p := mustParse(t, rep.body)
		kinds = append(kinds, p.header.Get("Subject"))
		_, rcpts, err := parseStatus(p.parts[1].body)
		if err != nil || len(rcpts) != 1 || rcpts[0].Get("Final-Recipient") != "rfc822; bob@example.org" {
			t.Errorf("report %s covers %v (%v)", key, rcpts, err)
		}
		if !bytes.Contains(p.parts[1].body, []byte("X-Ferry-Queue-ID: "+id)) {
			t.Errorf("report %s does not name queue ID %s", key, id)
		}
	}
	if !strings.Contains(strings.Join(kinds, "|"), r(Failed)) || !strings.Contains(strings.Join(kinds, "|"), r(Delayed)) {
		t.Errorf("report subjects %v", kinds)
	}
	if !strings.Contains(f.log.String(), "msg=dsn id="+id) {
		t.Errorf("no dsn log line for %s:\n%s", id, f.log.String())
	}
}

func r(k Kind) string { return k.subject() }

// TestDelayReportCoversAllDeferred: when several recipients of a message
// are deferred, the one delay report lists every one of them (one report
// per message per kind, covering all recipients of that kind), not only
// the recipient whose deferral crossed the warning time.
func TestDelayReportCoversAllDeferred(t *testing.T) {
	f := newQueueFixture(t)
	env := &smtp.Envelope{From: path("alice", "example.net"), Arrival: tArrival,
		Rcpts: []smtp.Recipient{{Addr: path("bob", "example.org")}, {Addr: path("carol", "example.org")}, {Addr: path("dave", "example.org")}}}
	if _, err := f.q.Put(context.Background(), env, strings.NewReader(originalASCII)); err != nil {
		t.Fatal(err)
	}
	f.deliverOnce(t, "example.org", func(p smtp.Path) queue.Result {
		if p.LocalPart == "dave" {
			return queue.Result{State: queue.Sent, Reply: reply250, RemoteMTA: "mx.example.org[192.0.2.1]:25", At: f.clock()}
		}
		return queue.Result{State: queue.Deferred, Reply: reply451, RemoteMTA: "mx.example.org[192.0.2.1]:25", At: f.clock()}
	})
	reports := f.reportsIn(t)
	if len(reports) != 1 {
		t.Fatalf("%d reports, want one delay report", len(reports))
	}
	_, rcpts, err := parseStatus(mustParse(t, reports[0].body).parts[1].body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rc := range rcpts {
		got = append(got, rc.Get("Final-Recipient")+" "+rc.Get("Action"))
	}
	want := "rfc822; bob@example.org delayed|rfc822; carol@example.org delayed"
	if strings.Join(got, "|") != want {
		t.Errorf("delay report covers %q, want %q", strings.Join(got, "|"), want)
	}
}
