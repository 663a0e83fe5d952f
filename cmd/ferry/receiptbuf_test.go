package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/dkim/dkimtest"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// gatedQueue holds every Put until release is closed, after telling
// arrived which reader it got: so a test can look at all the messages
// being verified at once.
type gatedQueue struct {
	*queue.Queue
	arrived chan io.Reader
	release chan struct{}
}

func (g *gatedQueue) Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	g.arrived <- body
	<-g.release
	return g.Queue.Put(ctx, env, body)
}

// TestVerificationStaysInBudget verifies 32 signed messages of 900 KiB at
// once (29 MiB of content) with a verification budget of 8 MiB: while all
// are verified and none stored yet, the budget must never be exceeded,
// the messages beyond it must be in temporary files, and the Go heap must
// have grown by well under the content's size (the earlier wrapper held
// every message whole in memory). Then every message must be stored with
// a DKIM pass and the budget must be whole again.
func TestVerificationStaysInBudget(t *testing.T) {
	const (
		n      = 32
		size   = 900 << 10
		budget = 8 << 20
	)
	ns := dkimtest.StartDNS(t)
	key, _ := dkimtest.NewKey(t, ns, "example.org", "sel", dkim.Ed25519SHA256)
	spool := t.TempDir()
	qc := queue.DefaultConfig(spool)
	qc.SegmentSize = 64 << 20
	q, err := queue.Open(qc)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	g := &gatedQueue{Queue: q, arrived: make(chan io.Reader, n), release: make(chan struct{})}
	var cfg config.Config
	cfg.DKIM.Resolver, cfg.Queue.Spool = ns.Addr, spool
	mem := queue.NewMemBudget(budget)
	store := receiptStore(cfg, g, mem, slog.New(slog.NewTextHandler(io.Discard, nil)))

	// One shared body keeps the test's own memory small.
	body := []byte(strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-\r\n", size/66))
	msgs := make([][]byte, n) // signature and header of each message
	for i := range msgs {
		head := fmt.Sprintf("From: <a@example.org>\r\nTo: <b@example.net>\r\nSubject: large %d\r\nMessage-ID: <%d@example.org>\r\n\r\n", i, i)
		sig, err := dkim.Sign(io.MultiReader(strings.NewReader(head), bytes.NewReader(body)), key)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = []byte(sig + head)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	type result struct {
		id  string
		err error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env := &smtp.Envelope{ID: q.NewID(), From: smtp.Path{LocalPart: "a", Domain: "example.org"},
				Rcpts: []smtp.Recipient{{Addr: smtp.Path{LocalPart: "b", Domain: "example.net"}}}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			id, err := store.Put(ctx, env, io.MultiReader(bytes.NewReader(msgs[i]), bytes.NewReader(body)))
			results <- result{id, err}
		}()
	}
	spilled := 0
	for range n {
		select {
		case r := <-g.arrived:
			if _, ok := r.(*io.SectionReader); ok {
				spilled++
			}
		case r := <-results:
			t.Fatalf("a Put ended before every message was verified: %v", r.err)
		case <-time.After(2 * time.Minute):
			t.Fatal("timed out waiting for the messages to be verified")
		}
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	held := mem.Held()
	t.Logf("%d messages of %d KiB being verified at once: %d in temporary files, %d KiB of the %d KiB budget held, heap grown by %d KiB",
		n, size>>10, spilled, held>>10, budget>>10, grown>>10)
	if held > budget {
		t.Errorf("verification holds %d octets, over its budget of %d", held, budget)
	}
	if spilled == 0 || spilled == n {
		t.Errorf("%d of %d messages in temporary files, want those beyond the budget (some, not all)", spilled, n)
	}
	if limit := int64(budget + 8<<20); grown > limit {
		t.Errorf("heap grew by %d KiB with %d messages being verified, want under %d KiB (budget plus buffers), not the %d KiB of content",
			grown>>10, n, limit>>10, n*size>>10)
	}

	close(g.release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil {
			t.Errorf("Put: %v", r.err)
			continue
		}
		m, err := q.Show(r.id)
		if err != nil {
			t.Fatal(err)
		}
		if ar := m.Env.AuthResults; ar == nil || len(ar.DKIM) != 1 || ar.DKIM[0].Result != "pass" {
			t.Errorf("message %s stored with results %+v, want one DKIM pass", r.id, ar)
		}
		if m.Size < size {
			t.Errorf("message %s stored with %d octets, want over %d", r.id, m.Size, size)
		}
	}
	if h := mem.Held(); h != 0 {
		t.Errorf("%d octets of the verification budget still held after every Put", h)
	}
}
