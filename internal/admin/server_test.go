package admin

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// ids returns the IDs of a listing.
func ids(ms []Summary) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// uniquePrefix returns the shortest prefix of id that no other of all
// starts with.
func uniquePrefix(id string, all []string) string {
	for n := 1; n < len(id); n++ {
		unique := true
		for _, o := range all {
			if o != id && strings.HasPrefix(o, id[:n]) {
				unique = false
			}
		}
		if unique {
			return id[:n]
		}
	}
	return id
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != status {
		t.Fatalf("error = %v, want an API error with status %d", err, status)
	}
}

// TestQueueOperations runs every queue operation over real HTTP and checks
// its effect in the queue itself (Show, Walk) and in the log.
func TestQueueOperations(t *testing.T) {
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	var mu sync.Mutex
	var finished []queue.Event
	q, spool := openQueue(t, logger, func(e queue.Event) {
		if e.Kind == queue.EventFinished {
			mu.Lock()
			finished = append(finished, e)
			mu.Unlock()
		}
	})
	ctx := testCtx(t)
	a := put(t, q, plainBody, "alice@x.test", "bob@a.test")
	b := put(t, q, plainBody, "carol@x.test", "dave@b.test")
	c := put(t, q, plainBody, "alice@x.test", "erin@a.test", "frank@b.test")
	cl, _ := startAdmin(t, Options{Queue: q, Logger: logger, Spool: spool})

	all, err := cl.List(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all); len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("list = %v, want [%s %s %s]", got, a, b, c)
	}
	if all[2].Sender != "alice@x.test" || len(all[2].Rcpts) != 2 || all[2].Rcpts[1].Hop != "b.test" || all[2].Rcpts[1].State != "pending" {
		t.Errorf("summary = %+v", all[2])
	}
	for _, tc := range []struct {
		q    Query
		want []string
	}{
		{Query{Hop: "b.test"}, []string{b, c}},
		{Query{Sender: "carol"}, []string{b}},
		{Query{Rcpt: "erin@"}, []string{c}},
		{Query{Older: time.Hour}, nil},
		{Query{State: "held"}, nil},
	} {
		got, err := cl.List(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ids(got), ",") != strings.Join(tc.want, ",") {
			t.Errorf("list %+v = %v, want %v", tc.q, ids(got), tc.want)
		}
	}
	_, err = cl.List(ctx, Query{State: "frozen"})
	wantStatus(t, err, http.StatusBadRequest)

	// A delivery attempt defers message a: the listing's state filter and
	// Show's history see it.
	deferLeased(t, q, smtp.NewReply(451, "4.3.0", "try later"))
	deferred, err := cl.List(ctx, Query{State: "deferred"})
	if err != nil || len(deferred) == 0 {
		t.Fatalf("deferred list = %v, %v", ids(deferred), err)
	}
	dID := deferred[0].ID
	prefix := uniquePrefix(dID, []string{a, b, c})
	if len(prefix) == len(dID) {
		t.Fatalf("no unique prefix for %s among %s %s %s", dID, a, b, c)
	}
	m, err := cl.Show(ctx, prefix, false)
	if err != nil {
		t.Fatal(err)
	}
	var hist *Recipient
	for i := range m.Rcpts {
		if m.Rcpts[i].State == "deferred" {
			hist = &m.Rcpts[i]
		}
	}
	if m.ID != dID || hist == nil || len(hist.History) != 1 || hist.History[0].Reply != "451 4.3.0 try later" ||
		hist.LastReply != "451 4.3.0 try later" || hist.RemoteMTA != "mx[192.0.2.1]:25" || hist.Notify != "FAILURE,DELAY" {
		t.Fatalf("show = %+v", m)
	}
	if m.Client.Helo != "client.example" || m.Body != "8BITMIME" || m.Content != nil {
		t.Errorf("envelope = %+v", m)
	}
	if !hist.Next.After(time.Now().Add(30 * time.Minute)) {
		t.Errorf("next attempt %v, want about an hour ahead", hist.Next)
	}
	withBody, err := cl.Show(ctx, dID, true)
	if err != nil || !strings.HasSuffix(string(withBody.Content), plainBody) {
		t.Fatalf("body = %q, %v", withBody.Content, err)
	}

	// retry ID: the deferred recipient is due now. A change needs a
	// prefix of MinChangePrefix characters at least.
	if full, err := cl.Act(ctx, dID[:max(len(prefix), MinChangePrefix)], "retry"); err != nil || full != dID {
		t.Fatalf("retry = %q, %v", full, err)
	}
	info, _ := q.Show(dID)
	for _, r := range info.Rcpts {
		if r.State == queue.Deferred && r.Next.After(time.Now().Add(time.Minute)) {
			t.Errorf("after retry, next attempt %v", r.Next)
		}
	}

	// hold and release.
	if _, err := cl.Act(ctx, a, "hold"); err != nil {
		t.Fatal(err)
	}
	if info, _ := q.Show(a); !info.Held {
		t.Error("hold: message not held")
	}
	held, _ := cl.List(ctx, Query{State: "held"})
	if got := ids(held); len(got) != 1 || got[0] != a {
		t.Errorf("held list = %v", got)
	}
	if _, err := cl.Act(ctx, a, "release"); err != nil {
		t.Fatal(err)
	}
	if info, _ := q.Show(a); info.Held {
		t.Error("release: message still held")
	}

	// retry by hop and all.
	if n, err := cl.Retry(ctx, "b.test"); err != nil || n != 2 {
		t.Errorf("retry hop = %d, %v; want 2", n, err)
	}
	if n, err := cl.Retry(ctx, ""); err != nil || n != 3 {
		t.Errorf("retry all = %d, %v; want 3", n, err)
	}

	// delete: gone without a DSN.
	if _, err := cl.Act(ctx, b, "delete"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Show(b); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("after delete, Show = %v", err)
	}
	_, err = cl.Show(ctx, b, false)
	wantStatus(t, err, http.StatusNotFound)

	// bounce: every pending recipient fails, the message finishes.
	if _, err := cl.Act(ctx, c, "bounce"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Show(c); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("after bounce, Show = %v", err)
	}
	mu.Lock()
	if len(finished) != 1 || finished[0].ID != c || finished[0].Rcpts[0].State != queue.Failed ||
		finished[0].Rcpts[0].LastReply.Enhanced != "5.0.0" {
		t.Errorf("finished events = %+v", finished)
	}
	mu.Unlock()

	// Errors: unknown action, ambiguous prefix, unknown ID.
	_, err = cl.Act(ctx, a, "freeze")
	wantStatus(t, err, http.StatusNotFound)
	put(t, q, plainBody, "z@x.test", "y@a.test")
	_, err = cl.Show(ctx, a[:1], false)
	wantStatus(t, err, http.StatusConflict)
	_, err = cl.Act(ctx, "ZZZZZZZZ", "hold")
	wantStatus(t, err, http.StatusNotFound)

	for _, want := range []string{
		"msg=admin id=" + a + " action=hold",
		"msg=admin id=" + a + " action=release",
		"msg=admin id=" + dID + " action=retry",
		"msg=admin action=retry hop=b.test messages=2",
		"msg=deleted id=" + b,
		"msg=admin id=" + c + " action=bounce",
		"msg=removed id=" + c,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestShowPlan checks the transfer plan from the hop cache: an 8-bit
// message to a hop without 8BITMIME is converted, with 8BITMIME it goes as
// it is, and an unseen hop says so.
func TestShowPlan(t *testing.T) {
	q, _ := openQueue(t, discardLogger(), nil)
	ctx := testCtx(t)
	table, err := route.NewTable(route.Options{},
		route.Route{Pattern: "domino.test", Hops: []route.NextHop{{Host: "127.0.0.1", Port: 2526, NoMX: true}}},
		route.Route{Pattern: "modern.test", Hops: []route.NextHop{{Host: "127.0.0.1", Port: 2527, NoMX: true}}},
		route.Route{Pattern: "new.test", Hops: []route.NextHop{{Host: "127.0.0.1", Port: 2528, NoMX: true}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	hops := deliver.NewHopCache(discardLogger())
	seen := time.Now().Add(-3 * time.Minute)
	hops.Record(deliver.HopInfo{Hop: "127.0.0.1:2526", ESMTP: true, Keywords: smtp.Extensions{"SIZE": "10240000", "PIPELINING": ""}, Seen: seen})
	hops.Record(deliver.HopInfo{Hop: "127.0.0.1:2527", ESMTP: true, Keywords: smtp.Extensions{"8BITMIME": "", "PIPELINING": ""}, Seen: seen})
	id := put(t, q, eightBitBody, "alice@x.test", "u@domino.test", "v@modern.test", "w@new.test")
	cl, _ := startAdmin(t, Options{Queue: q, Hops: hops, Routes: table})
	m, err := cl.Show(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Plans) != 3 {
		t.Fatalf("plans = %+v", m.Plans)
	}
	byHop := map[string]HopPlan{}
	for _, p := range m.Plans {
		byHop[p.Hop] = p
	}
	if p := byHop["domino.test"]; p.NextHop != "127.0.0.1:2526" || !strings.HasPrefix(p.Plan, "body=8BITMIME→7BIT converted, DATA") || !p.Seen.Equal(seen) {
		t.Errorf("domino plan = %+v", p)
	}
	if p := byHop["modern.test"]; p.Plan == "" || strings.Contains(p.Plan, "converted") || !strings.HasPrefix(p.Plan, "body=8BITMIME, DATA") {
		t.Errorf("modern plan = %+v", p)
	}
	if p := byHop["new.test"]; p.Plan != "" || !strings.Contains(p.Note, "has been seen") || p.Route != "new.test=[127.0.0.1]:2528" {
		t.Errorf("unseen plan = %+v", p)
	}
	got, err := cl.Hops(ctx)
	if err != nil || len(got) != 2 || got[0].Hop != "127.0.0.1:2526" || got[0].Keywords.Has("8BITMIME") || !got[1].Keywords.Has("8BITMIME") {
		t.Errorf("hops = %+v, %v", got, err)
	}
	if _, ok := netip.ParseAddrPort(got[0].Hop); ok != nil {
		t.Errorf("hop key %q", got[0].Hop)
	}
}

// TestHealth checks /healthz and /readyz.
func TestHealth(t *testing.T) {
	q, spool := openQueue(t, discardLogger(), nil)
	var listenErr, readyErr error
	_, addr := startAdmin(t, Options{Queue: q, Spool: spool,
		Listeners: func() error { return listenErr }, Ready: func() error { return readyErr }})
	get := func(path string) (int, Health) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, h
	}
	if code, h := get("/healthz"); code != 200 || h.Checks["queue_writable"] != "ok" || h.Checks["listeners"] != "ok" {
		t.Errorf("healthz = %d %+v", code, h)
	}
	listenErr = errors.New("listener 127.0.0.1:25 closed")
	if code, h := get("/healthz"); code != 503 || h.Status != "failing" || h.Checks["listeners"] != listenErr.Error() {
		t.Errorf("healthz with a listener down = %d %+v", code, h)
	}
	if code, h := get("/readyz"); code != 200 || h.Checks["queue"] != "ok" {
		t.Errorf("readyz = %d %+v, want 200 with the queue check ok", code, h)
	}
	readyErr = errors.New("starting")
	if code, h := get("/readyz"); code != 503 || h.Checks["ready"] != "starting" {
		t.Errorf("readyz while starting = %d %+v", code, h)
	}
	// An unwritable spool fails the queue check.
	_, addr2 := startAdmin(t, Options{Queue: q, Spool: spool + "/missing"})
	resp, err := http.Get("http://" + addr2 + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("healthz with a missing spool = %d", resp.StatusCode)
	}
	// Without Metrics there is no /metrics.
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/metrics without Metrics = %d", resp.StatusCode)
	}
}
