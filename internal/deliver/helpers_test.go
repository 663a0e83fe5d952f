package deliver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// memQueue is an in-memory Queue: leases handed out in order, results
// recorded per message and recipient.
type memQueue struct {
	mu       sync.Mutex
	leases   []*queue.Lease
	results  map[string]map[int][]queue.Result
	released int
	// renewals, when positive, is how many Renew calls succeed; after
	// that the queue has taken the lease back. Zero: every one succeeds.
	renewals int
	renewed  int
}

func newMemQueue(leases ...*queue.Lease) *memQueue {
	return &memQueue{leases: leases, results: map[string]map[int][]queue.Result{}}
}

func (q *memQueue) Lease(ctx context.Context) (*queue.Lease, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.leases) == 0 {
		return nil, nil
	}
	l := q.leases[0]
	q.leases = q.leases[1:]
	return l, nil
}

func (q *memQueue) Update(_ context.Context, _ *queue.Lease, id string, rcpt int, r queue.Result) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.results[id] == nil {
		q.results[id] = map[int][]queue.Result{}
	}
	q.results[id][rcpt] = append(q.results[id][rcpt], r)
	return nil
}

// Renew keeps the lease until renewals run out.
func (q *memQueue) Renew(*queue.Lease) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.renewed++
	return q.renewals == 0 || q.renewed <= q.renewals
}

func (q *memQueue) Release(*queue.Lease) {
	q.mu.Lock()
	q.released++
	q.mu.Unlock()
}

// last returns the latest result of one recipient.
func (q *memQueue) last(t testing.TB, id string, rcpt int) queue.Result {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	rs := q.results[id][rcpt]
	if len(rs) == 0 {
		t.Fatalf("no result for %s rcpt %d", id, rcpt)
	}
	return rs[len(rs)-1]
}

// expect checks a recipient's latest state and reply prefix.
func (q *memQueue) expect(t *testing.T, id string, rcpt int, state queue.RcptState, replyPrefix string) {
	t.Helper()
	r := q.last(t, id, rcpt)
	if r.State != state || !strings.HasPrefix(r.Reply.String(), replyPrefix) {
		t.Errorf("%s rcpt %d: state %s reply %q; want %s %q", id, rcpt, statusWord(r.State), r.Reply.String(), statusWord(state), replyPrefix)
	}
}

// testMessage builds a lease item with recipients at hop.test.
func testMessage(id, body string, rcpts ...string) queue.Item {
	env := &smtp.Envelope{ID: id, From: smtp.Path{LocalPart: "sender", Domain: "origin.example"}, Arrival: time.Now()}
	var idx []int
	for i, r := range rcpts {
		local, domain, _ := strings.Cut(r, "@")
		env.Rcpts = append(env.Rcpts, smtp.Recipient{Addr: smtp.Path{LocalPart: local, Domain: domain}})
		idx = append(idx, i)
	}
	return queue.Item{Env: env, Rcpts: idx, Size: int64(len(body)), Body: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(body)), nil
	}}
}

// syncBuffer collects log output written and read from different goroutines.
type syncBuffer = testrelay.SyncBuffer

// testAgent builds an agent whose every domain routes to rt.
func testAgent(t testing.TB, q Queue, rt route.Route, mod func(*Config)) (*Agent, *syncBuffer) {
	t.Helper()
	tab, err := route.NewTable(route.Options{Resolver: noDNS{}}, rt)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{
		Routes:      tab,
		HeloName:    "ferry.test",
		IdleTimeout: 200 * time.Millisecond,
		Timeouts:    Timeouts{Greeting: 5 * time.Second, Hello: 5 * time.Second, Mail: 5 * time.Second, Rcpt: 5 * time.Second, DataInit: 5 * time.Second, DataBlock: 5 * time.Second, DataTerm: 5 * time.Second, Quit: 2 * time.Second, Rset: 5 * time.Second},
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := NewAgent(q, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, logs
}

// noDNS fails every lookup: tests route with [ip] next hops only.
type noDNS struct{}

func (noDNS) LookupMX(context.Context, string) ([]*net.MX, error) {
	return nil, fmt.Errorf("test does no DNS")
}

func (noDNS) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, fmt.Errorf("test does no DNS")
}
