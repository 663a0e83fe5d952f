package queuetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Cases returns the contract cases.
func Cases() []Case {
	return []Case{
		{Name: "put-lease-roundtrip", Run: putLeaseRoundtrip},
		{Name: "walk-show-resolve", Run: walkShowResolve},
		{Name: "sent-and-failed-finish", Run: sentAndFailedFinish},
		{Name: "deferred-retry-and-delay-event", Opts: func(o *Options) { o.RetryInitial = 300 * time.Millisecond }, Run: deferredRetry},
		{Name: "release-unreported-is-due", Run: releaseUnreported},
		{Name: "fencing-after-takeover", Opts: func(o *Options) { o.LeaseTimeout = time.Second }, Run: fencing},
		{Name: "hop-concurrency", Opts: func(o *Options) { o.HopConcurrency = 1 }, Run: hopConcurrency},
		{Name: "hop-keys", Run: hopKeys},
		{Name: "hold-unhold", Run: holdUnhold},
		{Name: "delete-no-event", Run: deleteNoEvent},
		{Name: "bounce-now", Run: bounceNow},
		{Name: "retry-now-and-hop", Run: retryNow},
		{Name: "lease-holder-shown", Opts: func(o *Options) { o.Node = "relay-7" }, Run: leaseHolder},
		{Name: "lifetime-expiry", Opts: func(o *Options) { o.Lifetime = time.Second; o.RetryInitial = 100 * time.Millisecond }, Run: lifetimeExpiry},
		{Name: "duplicate-id-refused", Run: duplicateID},
		{Name: "concurrent-puts", Run: concurrentPutsCase},
	}
}

func putLeaseRoundtrip(t *testing.T, q queue.Store, ev *Events) {
	if err := q.Writable(); err != nil {
		t.Errorf("a fresh queue is not writable: %v", err)
	}
	env := Env("sender@example.org", "a@example.net", "b@EXAMPLE.net")
	env.SMTPUTF8, env.RequireTLS = true, true
	body := Body("roundtrip", 4096)
	id := Put(t, q, env, body)
	if id == "" || env.ID != id || env.Arrival.IsZero() {
		t.Fatalf("Put gave ID %q, env.ID %q, arrival %v", id, env.ID, env.Arrival)
	}
	l := Lease(t, q)
	defer q.Release(l)
	if l.Hop != "example.net" || len(l.Items) != 1 || l.Epoch == 0 || l.Node != "node-a" {
		t.Fatalf("lease hop %q, %d items, epoch %d, node %q", l.Hop, len(l.Items), l.Epoch, l.Node)
	}
	it := l.Items[0]
	got := it.Env
	if got.ID != id || got.From != env.From || got.Body != env.Body || !got.SMTPUTF8 || !got.RequireTLS ||
		got.Ret != env.Ret || got.EnvID != env.EnvID || got.Size != env.Size || got.Auth != env.Auth ||
		got.Client != env.Client || !got.Arrival.Equal(env.Arrival) {
		t.Errorf("envelope changed:\n got %+v\nwant %+v", got, env)
	}
	if !slices.Equal(got.Rcpts, env.Rcpts) {
		t.Errorf("recipients %+v, want %+v", got.Rcpts, env.Rcpts)
	}
	if !slices.Equal(it.Rcpts, []int{0, 1}) || it.Attempts != 0 || it.Size != int64(len(body)) || it.Lease != l {
		t.Errorf("item rcpts %v, attempts %d, size %d (want %d), lease %p (want %p)", it.Rcpts, it.Attempts, it.Size, len(body), it.Lease, l)
	}
	if b := ReadBody(t, it.Body); !bytes.Equal(b, body) {
		t.Errorf("body of %d octets differs from the %d stored", len(b), len(body))
	}
	ev.None(t)
}

func walkShowResolve(t *testing.T, q queue.Store, _ *Events) {
	var ids []string
	body := Body("w", 100)
	for _, r := range []string{"x@one.example", "y@two.example", "z@one.example"} {
		ids = append(ids, Put(t, q, Env("s@example.org", r), body))
	}
	var seen []string
	if err := q.Walk(queue.Filter{}, func(m *queue.MessageInfo) bool { seen = append(seen, m.ID); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, ids) {
		t.Errorf("Walk order %v, want %v (ID order)", seen, ids)
	}
	seen = nil
	_ = q.Walk(queue.Filter{Hop: "ONE.example"}, func(m *queue.MessageInfo) bool { seen = append(seen, m.ID); return true })
	if !slices.Equal(seen, []string{ids[0], ids[2]}) {
		t.Errorf("Walk by hop: %v", seen)
	}
	seen = nil
	_ = q.Walk(queue.Filter{Recipient: "Y@two"}, func(m *queue.MessageInfo) bool { seen = append(seen, m.ID); return true })
	if !slices.Equal(seen, []string{ids[1]}) {
		t.Errorf("Walk by recipient: %v", seen)
	}
	n := 0
	_ = q.Walk(queue.Filter{}, func(*queue.MessageInfo) bool { n++; return false })
	if n != 1 {
		t.Errorf("Walk went on after fn returned false: %d calls", n)
	}
	if got, err := q.Resolve(ids[1]); err != nil || got != ids[1] {
		t.Errorf("Resolve(full ID) = %q, %v", got, err)
	}
	if _, err := q.Resolve("nonexistent"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Resolve(unknown): %v, want ErrNotFound", err)
	}
	if _, err := q.Resolve(ids[0][:1]); !errors.Is(err, queue.ErrAmbiguous) {
		t.Errorf("Resolve(shared prefix): %v, want ErrAmbiguous", err)
	}
	m, err := q.Show(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Rcpts) != 1 || m.Rcpts[0].State != queue.Pending || m.Rcpts[0].Hop != "one.example" || m.Rcpts[0].Addr.Address() != "x@one.example" || m.Size != int64(len(body)) {
		t.Errorf("Show: %+v", m)
	}
	if st := q.Stats(); st.Messages != 3 {
		t.Errorf("Stats.Messages = %d, want 3", st.Messages)
	}
	if _, err := q.Show("0000000000000"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Show(unknown): %v", err)
	}
}

func sentAndFailedFinish(t *testing.T, q queue.Store, ev *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net", "b@example.net"), Body("f", 200))
	l := Lease(t, q)
	update(t, q, l, id, 0, ok250)
	if err := q.Update(bgctx, l, id, 0, ok250); !errors.Is(err, queue.ErrFinal) {
		t.Errorf("second outcome for a sent recipient: %v, want ErrFinal", err)
	}
	ev.None(t)
	update(t, q, l, id, 1, unknown)
	q.Release(l)
	e := ev.Next(t)
	if e.Kind != queue.EventFinished || e.ID != id || len(e.Rcpts) != 2 {
		t.Fatalf("event %+v", e)
	}
	if e.Rcpts[0].State != queue.Sent || e.Rcpts[1].State != queue.Failed || e.Rcpts[1].LastReply.Code != 550 ||
		len(e.Rcpts[1].History) != 1 || e.Env == nil || e.Env.ID != id {
		t.Errorf("finished event recipients %+v", e.Rcpts)
	}
	if b := ReadBody(t, e.Body); !bytes.Contains(b, []byte("Subject: f")) {
		t.Error("finished event body is not the message")
	}
	waitGone(t, q, id)
}

// waitGone waits until id is no longer queued (a finished message is
// removed after its event).
func waitGone(t *testing.T, q queue.Store, id string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		_, err := q.Show(id)
		if errors.Is(err, queue.ErrNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s still queued after it finished (err %v)", id, err)
		}
		time.Sleep(10 * time.Millisecond) // polls a state change, bounded by wait
	}
}

func deferredRetry(t *testing.T, q queue.Store, ev *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net", "b@example.net"), Body("d", 200))
	l := Lease(t, q)
	update(t, q, l, id, 0, busy451)
	update(t, q, l, id, 1, ok250)
	ev.None(t) // the delay event waits for the end of the attempt
	q.Release(l)
	e := ev.Next(t)
	if e.Kind != queue.EventDelayed || e.ID != id || e.Rcpt != 0 || e.Rcpts[0].State != queue.Deferred || e.Rcpts[1].State != queue.Sent {
		t.Fatalf("delay event %+v", e)
	}
	if e.PutReported == nil {
		t.Fatal("delay event without PutReported: the backend keeps no record of reports made")
	}
	reportedOnce(t, q, e)
	m, err := q.Show(id)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Rcpts[0]
	if r.State != queue.Deferred || r.Attempts != 1 || r.LastReply.Code != 451 || !r.Next.After(time.Now().Add(-time.Second)) {
		t.Errorf("deferred recipient %+v", r)
	}
	l2 := Lease(t, q)
	if time.Now().Before(r.Next) {
		t.Errorf("retried at %v, before its time %v", time.Now(), r.Next)
	}
	if len(l2.Items) != 1 || !slices.Equal(l2.Items[0].Rcpts, []int{0}) || l2.Items[0].Attempts != 1 {
		t.Fatalf("retry lease items %+v", l2.Items)
	}
	update(t, q, l2, id, 0, ok250)
	q.Release(l2)
	if e := ev.Next(t); e.Kind != queue.EventFinished {
		t.Fatalf("event %+v, want finished", e)
	}
}

func releaseUnreported(t *testing.T, q queue.Store, ev *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net"), Body("r", 100))
	l := Lease(t, q)
	q.Release(l)
	l2 := Lease(t, q)
	defer q.Release(l2)
	if len(l2.Items) != 1 || l2.Items[0].Env.ID != id || l2.Epoch == l.Epoch {
		t.Fatalf("released work not due again: %+v (epochs %d, %d)", l2.Items, l.Epoch, l2.Epoch)
	}
	ev.None(t)
}

func fencing(t *testing.T, q queue.Store, ev *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net"), Body("fence", 100))
	l1 := Lease(t, q)
	// l1's holder stalls; its lease expires and the work is leased again.
	l2 := Lease(t, q)
	if len(l2.Items) != 1 || l2.Items[0].Env.ID != id {
		t.Fatalf("expired lease's work not leased again: %+v", l2.Items)
	}
	if l2.Epoch <= l1.Epoch {
		t.Errorf("epochs %d then %d: want growing", l1.Epoch, l2.Epoch)
	}
	if q.Renew(l1) {
		t.Error("Renew of a lease taken over succeeded")
	}
	if err := q.Update(bgctx, l1, id, 0, unknown); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("outcome under the lease taken over: %v, want ErrLeaseLost", err)
	}
	if !q.Renew(l2) {
		t.Error("Renew of the live lease failed")
	}
	update(t, q, l2, id, 0, ok250)
	q.Release(l1) // harmless
	q.Release(l2)
	e := ev.Next(t)
	if e.Kind != queue.EventFinished || e.Rcpts[0].State != queue.Sent {
		t.Fatalf("the stale outcome won: %+v", e.Rcpts)
	}
}

func hopConcurrency(t *testing.T, q queue.Store, _ *Events) {
	Put(t, q, Env("s@example.org", "a@busy.example"), Body("h1", 100))
	l1 := Lease(t, q)
	second := Put(t, q, Env("s@example.org", "b@busy.example"), Body("h2", 100))
	other := Put(t, q, Env("s@example.org", "c@other.example"), Body("h3", 100))
	l3 := Lease(t, q)
	if l3.Hop != "other.example" || l3.Items[0].Env.ID != other {
		t.Fatalf("lease for %s (%s), want other.example: the full hop was leased again", l3.Hop, l3.Items[0].Env.ID)
	}
	q.Release(l3)
	if err := q.Hold(bgctx, other); err != nil {
		t.Fatal(err)
	}
	NoLease(t, q, time.Second)
	q.Release(l1)
	l2 := Lease(t, q)
	defer q.Release(l2)
	if l2.Hop != "busy.example" || !slices.ContainsFunc(l2.Items, func(it queue.Item) bool { return it.Env.ID == second }) {
		t.Fatalf("lease %s with %d items after the hop had room again, without %s", l2.Hop, len(l2.Items), second)
	}
}

func hopKeys(t *testing.T, q queue.Store, _ *Events) {
	id := Put(t, q, Env("s@example.org", "a@one.example", "b@two.example", "c@One.Example"), Body("k", 100))
	got := map[string][]int{}
	for range 2 {
		l := Lease(t, q)
		defer q.Release(l)
		if len(l.Items) != 1 || l.Items[0].Env.ID != id {
			t.Fatalf("lease items %+v", l.Items)
		}
		got[l.Hop] = l.Items[0].Rcpts
	}
	if !slices.Equal(got["one.example"], []int{0, 2}) || !slices.Equal(got["two.example"], []int{1}) {
		t.Errorf("recipients by hop: %v", got)
	}
}

func holdUnhold(t *testing.T, q queue.Store, _ *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net"), Body("hold", 100))
	if err := q.Hold(bgctx, id); err != nil {
		t.Fatal(err)
	}
	if err := q.Hold(bgctx, "0000000000000"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Hold(unknown): %v", err)
	}
	NoLease(t, q, time.Second)
	var held []string
	_ = q.Walk(queue.Filter{State: queue.HeldState}, func(m *queue.MessageInfo) bool { held = append(held, m.ID); return m.Held })
	if !slices.Equal(held, []string{id}) {
		t.Errorf("held messages %v", held)
	}
	if err := q.Unhold(bgctx, id); err != nil {
		t.Fatal(err)
	}
	l := Lease(t, q)
	defer q.Release(l)
	if l.Items[0].Env.ID != id {
		t.Fatal("released message not leased")
	}
}

func deleteNoEvent(t *testing.T, q queue.Store, ev *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net"), Body("del", 100))
	if err := q.Delete(bgctx, id); err != nil {
		t.Fatal(err)
	}
	waitGone(t, q, id)
	NoLease(t, q, 500*time.Millisecond)
	ev.None(t)
	if err := q.Delete(bgctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
}

func bounceNow(t *testing.T, q queue.Store, ev *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net", "b@example.net"), Body("b", 100))
	l := Lease(t, q)
	update(t, q, l, id, 0, ok250)
	q.Release(l)
	if err := q.BounceNow(bgctx, id); err != nil {
		t.Fatal(err)
	}
	e := ev.Next(t)
	if e.Kind != queue.EventFinished || e.Rcpts[0].State != queue.Sent || e.Rcpts[1].State != queue.Failed ||
		e.Rcpts[1].LastReply.Enhanced != "5.0.0" {
		t.Fatalf("bounce event %+v", e.Rcpts)
	}
	waitGone(t, q, id)
}

func retryNow(t *testing.T, q queue.Store, _ *Events) {
	id := Put(t, q, Env("s@example.org", "a@slow.example"), Body("rn", 100))
	other := Put(t, q, Env("s@example.org", "b@slow.example"), Body("rn2", 100))
	l := Lease(t, q)
	for _, it := range l.Items {
		update(t, q, l, it.Env.ID, 0, busy451)
	}
	q.Release(l)
	NoLease(t, q, 500*time.Millisecond) // retries are an hour away
	if err := q.RetryNow(bgctx, id); err != nil {
		t.Fatal(err)
	}
	l = Lease(t, q)
	if len(l.Items) != 1 || l.Items[0].Env.ID != id {
		t.Fatalf("RetryNow: lease %+v", l.Items)
	}
	update(t, q, l, id, 0, busy451)
	q.Release(l)
	n, err := q.RetryHop(bgctx, "SLOW.example")
	if err != nil || n != 2 {
		t.Fatalf("RetryHop = %d, %v; want 2", n, err)
	}
	l = Lease(t, q)
	defer q.Release(l)
	var got []string
	for _, it := range l.Items {
		got = append(got, it.Env.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{id, other}) {
		t.Errorf("after RetryHop leased %v", got)
	}
}

func leaseHolder(t *testing.T, q queue.Store, _ *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net"), Body("lh", 100))
	m, _ := q.Show(id)
	if m.Rcpts[0].LeasedBy != "" {
		t.Errorf("leased by %q before any lease", m.Rcpts[0].LeasedBy)
	}
	l := Lease(t, q)
	m, err := q.Show(id)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Rcpts[0]
	if r.LeasedBy != "relay-7" || r.LeaseEpoch != l.Epoch || r.LeaseExpires.IsZero() {
		t.Errorf("Show during the lease: leased by %q epoch %d (want %d) until %v", r.LeasedBy, r.LeaseEpoch, l.Epoch, r.LeaseExpires)
	}
	var walked string
	_ = q.Walk(queue.Filter{}, func(m *queue.MessageInfo) bool { walked = m.Rcpts[0].LeasedBy; return true })
	if walked != "relay-7" {
		t.Errorf("Walk during the lease: leased by %q", walked)
	}
	q.Release(l)
	m, _ = q.Show(id)
	if m.Rcpts[0].LeasedBy != "" {
		t.Errorf("leased by %q after Release", m.Rcpts[0].LeasedBy)
	}
}

func lifetimeExpiry(t *testing.T, q queue.Store, ev *Events) {
	id := Put(t, q, Env("s@example.org", "a@example.net"), Body("exp", 100))
	l := Lease(t, q)
	update(t, q, l, id, 0, busy451)
	q.Release(l)
	if e := ev.Next(t); e.Kind != queue.EventDelayed {
		t.Fatalf("event %+v, want delayed", e)
	}
	// Leasing finds the message past its lifetime and fails it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if l, _ := q.Lease(ctx); l != nil {
				for _, it := range l.Items {
					for _, r := range it.Rcpts {
						_ = q.Update(ctx, l, it.Env.ID, r, busy451)
					}
				}
				q.Release(l)
			}
		}
	}()
	defer func() { cancel(); <-done }()
	for {
		e := ev.Next(t)
		if e.Kind == queue.EventDelayed {
			continue
		}
		r := e.Rcpts[0]
		if e.Kind != queue.EventFinished || r.State != queue.Failed || !r.Expired || r.LastReply.Enhanced != "4.4.7" {
			t.Fatalf("expiry event kind %d, recipient %+v", e.Kind, r)
		}
		return
	}
}

func duplicateID(t *testing.T, q queue.Store, _ *Events) {
	env := Env("s@example.org", "a@example.net")
	id := Put(t, q, env, Body("dup", 100))
	env2 := Env("s@example.org", "b@example.net")
	env2.ID = id
	if _, err := q.Put(bgctx, env2, bytes.NewReader(Body("dup2", 100))); err == nil {
		t.Fatal("second Put with the same ID succeeded")
	}
	m, err := q.Show(id)
	if err != nil || m.Rcpts[0].Addr.Address() != "a@example.net" {
		t.Fatalf("first message damaged: %+v, %v", m, err)
	}
	if _, err := q.Put(bgctx, &smtp.Envelope{From: env.From}, bytes.NewReader(nil)); err == nil {
		t.Error("Put without recipients succeeded")
	}
}

func concurrentPutsCase(t *testing.T, q queue.Store, _ *Events) {
	ids := concurrentPuts(t, q, 16, 320)
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("ID %s given twice", id)
		}
		seen[id] = true
	}
	n := 0
	_ = q.Walk(queue.Filter{}, func(*queue.MessageInfo) bool { n++; return true })
	if n != len(ids) || len(ids) != 320 {
		t.Errorf("%d messages queued after %d Puts", n, len(ids))
	}
}
