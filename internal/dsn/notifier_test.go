package dsn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// putRecord is one call of the fake PutFunc.
type putRecord struct {
	env  smtp.Envelope
	body []byte
}

// fakePut records queued reports; fail makes it return an error.
type fakePut struct {
	mu   sync.Mutex
	puts []putRecord
	fail error
}

func (f *fakePut) put(_ context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	if env.ID != "" {
		return "", errors.New("fakePut: the Notifier must leave env.ID empty")
	}
	f.puts = append(f.puts, putRecord{env: *env, body: b})
	return fmt.Sprintf("DSN%d", len(f.puts)), nil
}

func (f *fakePut) all() []putRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]putRecord(nil), f.puts...)
}

// syncBuffer collects log output written and read from different goroutines.
type syncBuffer = testrelay.SyncBuffer

// notifierFixture is a Notifier with a fake clock, PutFunc and log.
type notifierFixture struct {
	n   *Notifier
	put *fakePut
	log *syncBuffer
	now time.Time
}

func newFixture(t *testing.T, postmaster string) *notifierFixture {
	t.Helper()
	f := &notifierFixture{put: &fakePut{}, log: &syncBuffer{}, now: tReport}
	n, err := NewNotifier(NotifierConfig{
		ReportingMTA: "relay.example.com",
		Postmaster:   postmaster,
		Clock:        func() time.Time { return f.now },
		Logger:       slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		NewToken:     func() string { return "1" },
	}, f.put.put)
	if err != nil {
		t.Fatal(err)
	}
	f.n = n
	return f
}

// bodyOf returns an Event.Body that opens s.
func bodyOf(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

// status builds a queue recipient status for recipient i of env.
func status(env *smtp.Envelope, i int, st queue.RcptState, reply smtp.Reply) queue.RcptStatus {
	return queue.RcptStatus{Index: i, Addr: env.Rcpts[i].Addr, State: st, Attempts: 1, LastReply: reply,
		RemoteMTA: "mx.example.org[192.0.2.1]:25", LastAttempt: tReport.Add(-time.Minute)}
}

var (
	reply550 = smtp.NewReply(550, "5.1.1", "User unknown")
	reply451 = smtp.NewReply(451, "4.3.0", "Try again later")
	reply250 = smtp.NewReply(250, "2.0.0", "Ok")
)

// finishedEvent returns an EventFinished for env with the given states.
func finishedEvent(env *smtp.Envelope, states ...queue.RcptState) queue.Event {
	ev := queue.Event{Kind: queue.EventFinished, ID: env.ID, Env: env, Body: bodyOf(originalASCII)}
	for i, st := range states {
		r := reply250
		if st == queue.Failed {
			r = reply550
		}
		ev.Rcpts = append(ev.Rcpts, status(env, i, st, r))
	}
	return ev
}

// delayedEvent returns an EventDelayed for recipient i of env.
func delayedEvent(env *smtp.Envelope, i int) queue.Event {
	return queue.Event{Kind: queue.EventDelayed, ID: env.ID, Env: env, Body: bodyOf(originalASCII),
		Rcpts: []queue.RcptStatus{status(env, i, queue.Deferred, reply451)}}
}

// reportRcpts returns the Final-Recipient addresses and Actions of a queued
// report, checking that it parses.
func reportRcpts(t *testing.T, p putRecord) (addrs, actions []string) {
	t.Helper()
	rep := mustParse(t, p.body)
	if len(rep.parts) < 2 {
		t.Fatalf("report has %d parts", len(rep.parts))
	}
	_, rcpts, err := parseStatus(rep.parts[1].body)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		addrs = append(addrs, strings.TrimPrefix(r.Get("Final-Recipient"), "rfc822; "))
		actions = append(actions, r.Get("Action"))
	}
	return addrs, actions
}

func TestRequested(t *testing.T) {
	const (
		S = smtp.NotifySuccess
		F = smtp.NotifyFailure
		D = smtp.NotifyDelay
		N = smtp.NotifyNever
	)
	tests := []struct {
		notify                            smtp.Notify
		failed, delayed, relayed, deliver bool
	}{
		{0, true, true, false, false},
		{N, false, false, false, false},
		{S, false, false, true, true},
		{F, true, false, false, false},
		{D, false, true, false, false},
		{S | F | D, true, true, true, true},
		{F | D, true, true, false, false},
	}
	for _, tt := range tests {
		got := [4]bool{Requested(tt.notify, Failed), Requested(tt.notify, Delayed), Requested(tt.notify, Relayed), Requested(tt.notify, Delivered)}
		want := [4]bool{tt.failed, tt.delayed, tt.relayed, tt.deliver}
		if got != want {
			t.Errorf("NOTIFY %04b: got %v, want %v", tt.notify, got, want)
		}
	}
}

func TestNotifierFailedReport(t *testing.T) {
	f := newFixture(t, "")
	env := baseEnv()
	// bob failed, carol sent, dave failed: one report naming bob and dave.
	f.n.OnEvent(finishedEvent(env, queue.Failed, queue.Sent, queue.Failed))
	puts := f.put.all()
	if len(puts) != 1 {
		t.Fatalf("%d reports queued, want 1", len(puts))
	}
	p := puts[0]
	if !p.env.From.IsNull() || len(p.env.Rcpts) != 1 || p.env.Rcpts[0].Addr != env.From {
		t.Errorf("report envelope from %s to %v, want <> to %s", p.env.From, p.env.Rcpts, env.From)
	}
	if !p.env.Arrival.Equal(f.now) || p.env.ID != "" || p.env.Rcpts[0].Notify != 0 {
		t.Errorf("report envelope: arrival %v, ID %q, notify %d", p.env.Arrival, p.env.ID, p.env.Rcpts[0].Notify)
	}
	addrs, actions := reportRcpts(t, p)
	if strings.Join(addrs, ",") != "bob@example.org,dave@example.org" || strings.Join(actions, ",") != "failed,failed" {
		t.Errorf("report covers %v %v, want bob and dave, failed", addrs, actions)
	}
	checkReport(t, p.body, Report{Kind: Failed, ReportingMTA: "relay.example.com", Env: env, Date: f.now,
		MessageID: "0K3V9QH6R2ABC.failed@relay.example.com",
		Rcpts:     []Recipient{fromStatus(status(env, 0, queue.Failed, reply550)), fromStatus(status(env, 2, queue.Failed, reply550))}},
		originalASCII)
	logs := f.log.String()
	for _, want := range []string{"msg=dsn ", "id=0K3V9QH6R2ABC", "dsn_id=DSN1", "kind=failed", "rcpts=bob@example.org,dave@example.org"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestNotifierNoReport(t *testing.T) {
	never := baseEnv()
	for i := range never.Rcpts {
		never.Rcpts[i].Notify = smtp.NotifyNever
	}
	successOnly := baseEnv()
	for i := range successOnly.Rcpts {
		successOnly.Rcpts[i].Notify = smtp.NotifySuccess
	}
	bounce := baseEnv()
	bounce.From = smtp.Path{}
	tests := []struct {
		name   string
		ev     queue.Event
		reason string
	}{
		{"NOTIFY=NEVER", finishedEvent(never, queue.Failed, queue.Failed, queue.Failed), "NOTIFY excludes failure"},
		{"NOTIFY=SUCCESS only", finishedEvent(successOnly, queue.Failed, queue.Sent, queue.Sent), "NOTIFY excludes failure"},
		{"null sender", finishedEvent(bounce, queue.Failed, queue.Sent, queue.Sent), "null reverse path"},
		{"all sent", finishedEvent(baseEnv(), queue.Sent, queue.Sent, queue.Sent), ""},
		{"NOTIFY=NEVER delay", delayedEvent(never, 2), "NOTIFY excludes delay"},
		{"null sender delay", delayedEvent(bounce, 2), "null reverse path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "")
			f.now = tArrival.Add(5 * time.Hour)
			f.n.OnEvent(tt.ev)
			if n := len(f.put.all()); n != 0 {
				t.Errorf("%d reports queued, want none", n)
			}
			if tt.reason != "" && !strings.Contains(f.log.String(), "reason=\""+tt.reason+"\"") {
				t.Errorf("log does not give the reason %q:\n%s", tt.reason, f.log.String())
			}
		})
	}
}

func TestNotifierPostmasterCopy(t *testing.T) {
	f := newFixture(t, "postmaster@relay.example.com")
	bounce := baseEnv()
	bounce.From = smtp.Path{}
	f.n.OnEvent(finishedEvent(bounce, queue.Failed, queue.Sent, queue.Sent))
	puts := f.put.all()
	if len(puts) != 1 {
		t.Fatalf("%d reports queued, want 1 to the postmaster", len(puts))
	}
	copyEnv := puts[0].env
	if copyEnv.Rcpts[0].Addr.Address() != "postmaster@relay.example.com" || copyEnv.Rcpts[0].Notify != smtp.NotifyNever {
		t.Fatalf("copy goes to %v", copyEnv.Rcpts)
	}
	if to := mustParse(t, puts[0].body).header.Get("To"); to != "<postmaster@relay.example.com>" {
		t.Errorf("copy To = %q", to)
	}
	// The copy itself failing produces nothing more: no loop.
	copyEnv.ID = "COPY1"
	f.n.OnEvent(queue.Event{Kind: queue.EventFinished, ID: "COPY1", Env: &copyEnv, Body: bodyOf(string(puts[0].body)),
		Rcpts: []queue.RcptStatus{{Index: 0, Addr: copyEnv.Rcpts[0].Addr, State: queue.Failed, LastReply: reply550}}})
	if n := len(f.put.all()); n != 1 {
		t.Errorf("%d reports after the copy failed, want still 1", n)
	}
	// Delay reports never go to the postmaster.
	f.now = tArrival.Add(5 * time.Hour)
	f.n.OnEvent(delayedEvent(bounce, 1))
	if n := len(f.put.all()); n != 1 {
		t.Errorf("%d reports after a delayed bounce, want still 1", n)
	}
}

func TestNotifierDelayedOnce(t *testing.T) {
	f := newFixture(t, "")
	env := baseEnv()
	other := baseEnv()
	other.ID = "0K3V9QH6R2DEF"

	f.now = tArrival.Add(3 * time.Hour) // before the warning time
	f.n.OnEvent(delayedEvent(env, 2))
	if n := len(f.put.all()); n != 0 {
		t.Fatalf("%d reports before the warning time", n)
	}
	f.now = tArrival.Add(4 * time.Hour)
	f.n.OnEvent(delayedEvent(env, 2))
	f.n.OnEvent(delayedEvent(env, 0)) // the queue emits once per deferral and recipient
	f.now = tArrival.Add(6 * time.Hour)
	f.n.OnEvent(delayedEvent(env, 2))
	f.n.OnEvent(delayedEvent(other, 2))
	puts := f.put.all()
	if len(puts) != 2 {
		t.Fatalf("%d delay reports, want one per message (2)", len(puts))
	}
	addrs, actions := reportRcpts(t, puts[0])
	if strings.Join(addrs, ",") != "dave@example.org" || actions[0] != "delayed" {
		t.Errorf("delay report covers %v %v", addrs, actions)
	}
	fields := mustParse(t, puts[0].body).parts[1].body
	if !bytes.Contains(fields, []byte("Will-Retry-Until: Sat, 28 Nov 2026 09:30:00 +0000")) {
		t.Errorf("no Will-Retry-Until at arrival + 120h:\n%s", fields)
	}
	// Finishing the message forgets it (and sends the failure report).
	f.n.OnEvent(finishedEvent(env, queue.Sent, queue.Sent, queue.Failed))
	if n := len(f.put.all()); n != 3 {
		t.Fatalf("%d reports after the failure, want 3", n)
	}
	if f.n.claimWarning(env.ID, f.now) != true {
		t.Error("the finished message is still remembered as warned")
	}
}

func TestNotifierDelayedNotify(t *testing.T) {
	f := newFixture(t, "")
	f.now = tArrival.Add(5 * time.Hour)
	env := baseEnv()
	env.Rcpts[0].Notify = smtp.NotifyFailure
	env.Rcpts[2].Notify = smtp.NotifyDelay
	f.n.OnEvent(delayedEvent(env, 0)) // FAILURE only: no delay report, and no claim
	if n := len(f.put.all()); n != 0 {
		t.Fatalf("%d reports for NOTIFY=FAILURE", n)
	}
	f.n.OnEvent(delayedEvent(env, 2)) // DELAY: reported
	if n := len(f.put.all()); n != 1 {
		t.Fatalf("%d reports for NOTIFY=DELAY, want 1", n)
	}
}

func TestNotifierDelayedConcurrent(t *testing.T) {
	f := newFixture(t, "")
	f.now = tArrival.Add(5 * time.Hour)
	env := baseEnv()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.n.OnEvent(delayedEvent(env, i%3))
		}()
	}
	wg.Wait()
	if n := len(f.put.all()); n != 1 {
		t.Errorf("%d delay reports from concurrent events, want 1", n)
	}
}

func TestNotifierPutFailure(t *testing.T) {
	f := newFixture(t, "")
	f.now = tArrival.Add(5 * time.Hour)
	env := baseEnv()
	f.put.fail = errors.New("disk full")
	f.n.OnEvent(delayedEvent(env, 2))
	if !strings.Contains(f.log.String(), "cannot queue report") || !strings.Contains(f.log.String(), "disk full") {
		t.Errorf("put failure not logged:\n%s", f.log.String())
	}
	f.put.fail = nil
	f.n.OnEvent(delayedEvent(env, 2)) // the claim was released: try again
	if n := len(f.put.all()); n != 1 {
		t.Errorf("%d reports after a failed put and a retry, want 1", n)
	}
}

func TestNotifierBodyUnavailable(t *testing.T) {
	f := newFixture(t, "")
	ev := finishedEvent(baseEnv(), queue.Failed, queue.Sent, queue.Sent)
	ev.Body = func() (io.ReadCloser, error) { return nil, errors.New("segment gone") }
	f.n.OnEvent(ev)
	puts := f.put.all()
	if len(puts) != 1 {
		t.Fatalf("%d reports, want 1 without the original", len(puts))
	}
	if n := len(mustParse(t, puts[0].body).parts); n != 2 {
		t.Errorf("report has %d parts, want 2", n)
	}
}
