package pgqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
)

// TestBodyCap: the first body buffer follows the declared SIZE, within
// bounds, whatever the client declared.
func TestBodyCap(t *testing.T) {
	for _, tc := range []struct {
		declared int64
		want     int
	}{{0, 4 << 10}, {-5, 4 << 10}, {100, 4 << 10}, {4096, 4096 + 512}, {200 << 10, 200<<10 + 512}, {1 << 40, 1 << 20}} {
		if got := bodyCap(tc.declared); got != tc.want {
			t.Errorf("bodyCap(%d) = %d, want %d", tc.declared, got, tc.want)
		}
	}
}

// storedBody returns the body stored for id.
func storedBody(t *testing.T, q *Queue, id string) []byte {
	t.Helper()
	var b []byte
	if err := q.pool.QueryRow(context.Background(), "SELECT body FROM ferry_messages WHERE id = $1", id).Scan(&b); err != nil {
		t.Fatalf("body of %s: %v", id, err)
	}
	return b
}

// TestPutSizeHint: a body larger or smaller than the SIZE declared is
// stored whole.
func TestPutSizeHint(t *testing.T) {
	q := openQueue(t, Config{URL: newDB(t)})
	for _, tc := range []struct {
		declared int64
		size     int
	}{{100, 10000}, {1 << 40, 300}, {4096, 4096}, {4096, 4096 + 512}, {0, 70000}} {
		env := queuetest.Env("s@example.org", "r@example.net")
		env.Size = tc.declared
		body := queuetest.Body("size", tc.size)[:tc.size]
		id := queuetest.Put(t, q, env, body)
		if got := storedBody(t, q, id); !bytes.Equal(got, body) {
			t.Errorf("SIZE=%d: stored %d octets, want the %d sent", tc.declared, len(got), len(body))
		}
	}
}

// TestPutBatches: many writers against two committers and small batches:
// every Put is committed once, in batches no larger than BatchMax, with all
// its rows.
func TestPutBatches(t *testing.T) {
	const writers, each, batchMax = 24, 10, 4
	var mu sync.Mutex
	var batches, requests, tooBig int
	q := openQueue(t, Config{URL: newDB(t), Committers: 2, BatchMax: batchMax, OnCommit: func(s queue.CommitStats) {
		mu.Lock()
		defer mu.Unlock()
		batches++
		requests += s.Requests
		if s.Requests > batchMax {
			tooBig++
		}
	}})
	ids := make(chan string, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				env := queuetest.Env("s@example.org", fmt.Sprintf("r%d-%d@example.net", w, i), fmt.Sprintf("x%d@example.com", w))
				id, err := q.Put(context.Background(), env, bytes.NewReader(queuetest.Body("b", 300)))
				if err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("ID %s given twice", id)
		}
		seen[id] = true
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != writers*each || requests != writers*each || tooBig > 0 {
		t.Errorf("%d IDs, %d requests committed in %d batches (%d over %d), want %d", len(seen), requests, batches, tooBig, batchMax, writers*each)
	}
	var msgs, rcpts, groups int
	err := q.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM ferry_messages),
	(SELECT count(*) FROM ferry_recipients), (SELECT count(*) FROM ferry_groups)`).Scan(&msgs, &rcpts, &groups)
	if err != nil {
		t.Fatal(err)
	}
	if n := writers * each; msgs != n || rcpts != 2*n || groups != 2*n {
		t.Errorf("%d messages, %d recipients, %d groups stored; want %d, %d, %d", msgs, rcpts, groups, n, 2*n, 2*n)
	}
}

// TestPutNotifiedAfterCommit: a Put is announced on the channel idle nodes
// listen on, and once the NOTIFY arrives the message is there to claim.
func TestPutNotifiedAfterCommit(t *testing.T) {
	url := newDB(t)
	q := openQueue(t, Config{URL: url})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		t.Fatal(err)
	}
	id := queuetest.Put(t, q, queuetest.Env("s@example.org", "r@example.net"), queuetest.Body("n", 100))
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no NOTIFY after a Put: %v", err)
	}
	if n.Payload != "put" {
		t.Errorf("NOTIFY payload %q, want put", n.Payload)
	}
	var due bool
	if err := conn.QueryRow(ctx, "SELECT due <= now() FROM ferry_groups WHERE msg_id = $1", id).Scan(&due); err != nil || !due {
		t.Errorf("message %s not due when its NOTIFY arrived: %v, %v", id, due, err)
	}
}

// TestCloseDuringPuts: Puts racing Close either are stored (and said so) or
// fail with queue.ErrClosed; none that returned an ID is missing.
func TestCloseDuringPuts(t *testing.T) {
	url := newDB(t)
	q, err := Open(context.Background(), Config{URL: url, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 16
	var mu sync.Mutex
	var stored []string
	started := make(chan struct{}, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				env := queuetest.Env("s@example.org", fmt.Sprintf("r%d-%d@example.net", w, i))
				id, err := q.Put(context.Background(), env, bytes.NewReader(queuetest.Body("c", 500)))
				if errors.Is(err, queue.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				mu.Lock()
				stored = append(stored, id)
				mu.Unlock()
				if i == 0 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range writers {
		<-started
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	check := openQueue(t, Config{URL: url})
	var n int
	if err := check.pool.QueryRow(context.Background(), "SELECT count(*) FROM ferry_messages WHERE id = ANY($1)", stored).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(stored) {
		t.Errorf("%d of the %d messages Put said were stored are in the database", n, len(stored))
	}
}

// paramsSQL reads back every parameter of putSQL as the server decoded it.
const paramsSQL = `SELECT array_to_string($1::text[], ','),
	coalesce((SELECT string_agg(convert_from(e, 'UTF8'), ',') FROM unnest($2::bytea[]) e), ''),
	coalesce((SELECT string_agg(convert_from(e, 'UTF8'), ',') FROM unnest($3::bytea[]) e), ''), array_to_string($4::int8[], ','),
	array_to_string($5::timestamptz[], ','), array_to_string($6::timestamptz[], ','),
	array_to_string($7::text[], ','), array_to_string($8::int4[], ','), array_to_string($9::text[], ','),
	array_to_string($10::text[], ','), array_to_string($11::text[], ','), array_to_string($12::text[], ',')`

// TestPutParams: the binary arrays putParams writes decode on the server to
// the batch's values, for an empty batch and for messages with several
// recipients, hops and non-ASCII addresses.
func TestPutParams(t *testing.T) {
	q := openQueue(t, Config{URL: newDB(t)})
	ctx := context.Background()
	conn, err := q.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET TIME ZONE 'UTC'"); err != nil {
		t.Fatal(err)
	}
	sd, err := conn.Conn().Prepare(ctx, "params", paramsSQL)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 14, 5, 6, 789012000, time.UTC)
	req := func(id string, body string, addrs ...string) *putReq {
		r := &putReq{id: id, envelope: []byte("env-" + id), body: []byte(body), arrival: at, expires: at.Add(time.Hour), addrs: addrs}
		for _, a := range addrs {
			h := a[strings.IndexByte(a, '@')+1:]
			r.rcptHops = append(r.rcptHops, h)
			if !slices.Contains(r.hops, h) {
				r.hops = append(r.hops, h)
			}
		}
		return r
	}
	var p putParams
	for _, tc := range []struct {
		batch []*putReq
		want  []string
	}{
		{nil, []string{"", "", "", "", "", "", "", "", "", "", "", ""}},
		{[]*putReq{req("A1", "hello", "a@x.example", "b@y.example", "c@x.example"), req("B2", "", "jörg@bücher.example")},
			[]string{"A1,B2", "env-A1,env-B2", "hello,", "5,0",
				"2026-12-03 14:05:06.789012+00,2026-12-03 14:05:06.789012+00", "2026-12-03 15:05:06.789012+00,2026-12-03 15:05:06.789012+00",
				"A1,A1,A1,B2", "0,1,2,0", "x.example,y.example,x.example,bücher.example", "a@x.example,b@y.example,c@x.example,jörg@bücher.example",
				"A1,A1,B2", "x.example,y.example,bücher.example"}},
	} {
		values := p.encode(tc.batch)
		rr := conn.Conn().PgConn().ExecStatement(ctx, sd, values, binaryFormat, nil)
		var got []string
		for rr.NextRow() {
			for _, v := range rr.Values() {
				got = append(got, string(v))
			}
		}
		if _, err := rr.Close(); err != nil {
			t.Fatalf("%d requests: %v", len(tc.batch), err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%d requests decoded as\n%q\nwant\n%q", len(tc.batch), got, tc.want)
		}
	}
}
