// Package queuetest is the contract test suite of the queue: one table of
// cases that every backend of queue.Store must pass (the segment log of
// package queue, the PostgreSQL queue of package pgqueue). A backend's test
// calls Run with a Factory that opens a fresh, empty queue.
package queuetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Options are the settings a case needs of a backend; the Factory maps them
// onto the backend's configuration. Zero fields mean the case does not care.
type Options struct {
	// Node names the relay in leases.
	Node string
	// LeaseTimeout is how long an unrenewed lease lasts.
	LeaseTimeout time.Duration
	// RetryInitial is the first retry delay (also the most, in these
	// cases: RetryMax equals it), with no jitter.
	RetryInitial time.Duration
	// Lifetime is the message lifetime.
	Lifetime time.Duration
	// HopConcurrency is the most leases one next hop may have at once.
	HopConcurrency int
	// OnEvent receives the queue's events.
	OnEvent func(queue.Event)
}

// Factory opens a fresh, empty queue with o. It registers the queue's
// Close with t.Cleanup.
type Factory func(t *testing.T, o Options) queue.Store

// wait bounds every wait for an event of the queue; the machine may be
// busy, so it is generous.
const wait = 30 * time.Second

// Case is one contract case.
type Case struct {
	Name string
	// Opts adjusts the defaults (node "node-a", one-minute lease, one-hour
	// retry, five-day lifetime, hop concurrency 4).
	Opts func(*Options)
	Run  func(t *testing.T, q queue.Store, ev *Events)
}

// Run runs every case of Cases against the backend open makes.
func Run(t *testing.T, open Factory) {
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			o := Options{Node: "node-a", LeaseTimeout: time.Minute, RetryInitial: time.Hour,
				Lifetime: 120 * time.Hour, HopConcurrency: 4}
			if c.Opts != nil {
				c.Opts(&o)
			}
			ev := &Events{ch: make(chan queue.Event, 1024)}
			o.OnEvent = ev.record
			q := open(t, o)
			c.Run(t, q, ev)
		})
	}
}

// Events collects a queue's events for a case to wait on.
type Events struct {
	ch chan queue.Event
}

func (e *Events) record(ev queue.Event) {
	if ev.Body != nil {
		// The body is valid only while OnEvent runs: read it here.
		if rc, err := ev.Body(); err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			ev.Body = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
	}
	e.ch <- ev
}

// Next returns the next event, failing t after the wait.
func (e *Events) Next(t *testing.T) queue.Event {
	t.Helper()
	select {
	case ev := <-e.ch:
		return ev
	case <-time.After(wait):
		t.Fatal("no queue event within", wait)
	}
	return queue.Event{}
}

// None fails t when an event is waiting.
func (e *Events) None(t *testing.T) {
	t.Helper()
	select {
	case ev := <-e.ch:
		t.Fatalf("unexpected event %d for %s", ev.Kind, ev.ID)
	default:
	}
}

// Env returns an envelope from sender to rcpts ("local@domain"; "" for the
// null sender) with every field the encoding carries set.
func Env(sender string, rcpts ...string) *smtp.Envelope {
	env := &smtp.Envelope{Body: smtp.Body8BitMIME, Ret: smtp.ReturnHeaders, EnvID: "env-1", Size: 4096,
		Auth: "<>", Client: smtp.ClientInfo{Addr: "192.0.2.1:4321", Helo: "client.example", Protocol: "ESMTPS", TLS: true}}
	if sender != "" {
		env.From = mustAddr(sender)
	}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, smtp.Recipient{Addr: mustAddr(r), Notify: smtp.NotifyFailure | smtp.NotifyDelay, ORcpt: "rfc822;" + r})
	}
	return env
}

func mustAddr(s string) smtp.Path {
	p, err := smtp.ParseAddress(s)
	if err != nil {
		panic(fmt.Sprintf("queuetest: bad address %q: %v", s, err))
	}
	return p
}

// Body returns a message of about n octets whose content names tag.
func Body(tag string, n int) []byte {
	b := []byte("From: a@example.org\r\nSubject: " + tag + "\r\n\r\n")
	for len(b) < n {
		b = append(b, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"...)
	}
	return b
}

// Put stores a message and returns its ID.
func Put(t *testing.T, q queue.Store, env *smtp.Envelope, body []byte) string {
	t.Helper()
	id, err := q.Put(context.Background(), env, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return id
}

// Lease waits for a lease, failing t after the wait.
func Lease(t *testing.T, q queue.Store) *queue.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		l, err := q.Lease(ctx)
		if err != nil {
			t.Fatalf("Lease: %v", err)
		}
		if l != nil {
			return l
		}
	}
}

// NoLease fails t when a lease is handed out within d.
func NoLease(t *testing.T, q queue.Store, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for ctx.Err() == nil {
		l, err := q.Lease(ctx)
		if l != nil {
			q.Release(l)
			t.Fatalf("unexpected lease for %s with %d messages", l.Hop, len(l.Items))
		}
		if err != nil && ctx.Err() == nil {
			t.Fatalf("Lease: %v", err)
		}
	}
}

// ReadBody reads an item's body.
func ReadBody(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatalf("open body: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

var (
	ok250   = queue.Result{State: queue.Sent, Reply: smtp.NewReply(250, "2.0.0", "Ok: queued")}
	busy451 = queue.Result{State: queue.Deferred, Reply: smtp.NewReply(451, "4.2.0", "mailbox busy")}
	unknown = queue.Result{State: queue.Failed, Reply: smtp.NewReply(550, "5.1.1", "no such user")}
	bgctx   = context.Background()
)

// update records r, failing t on error.
func update(t *testing.T, q queue.Store, l *queue.Lease, id string, rcpt int, r queue.Result) {
	t.Helper()
	if err := q.Update(bgctx, l, id, rcpt, r); err != nil {
		t.Fatalf("Update %s rcpt %d: %v", id, rcpt, err)
	}
}

// concurrentPuts stores n messages from w writers and returns their IDs.
func concurrentPuts(t *testing.T, q queue.Store, w, n int) []string {
	t.Helper()
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	errc := make(chan error, w)
	for i := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n / w {
				env := Env("s@example.org", fmt.Sprintf("r%d-%d@example.net", i, j))
				id, err := q.Put(bgctx, env, bytes.NewReader(Body("c", 512)))
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("concurrent Put: %v", err)
	}
	return ids
}
