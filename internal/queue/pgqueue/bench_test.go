package pgqueue

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
	"github.com/ferrymta/ferry/internal/smtp"
)

// BenchmarkPut measures durable Put of 4 KiB messages at 1, 8 and 32
// writers for both backends in one run: the segment log, the shared queue
// with group commit (reporting the batch it reached), and a naive shared
// queue that commits one transaction per message on the same PostgreSQL
// (the baseline group commit is measured against), without and with the
// NOTIFY a naive queue would send in each transaction to wake idle nodes.
// Besides msgs/s and latency it reports the CPU time per message of this
// process and (for the shared queues) of the PostgreSQL cluster's
// processes, which a shared machine's load does not swing as it swings
// msgs/s.
//
//	go test -run '^$' -bench 'BenchmarkPut$' -benchtime 3000x ./internal/queue/pgqueue
func BenchmarkPut(b *testing.B) {
	const size = 4 << 10
	for _, writers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("backend=segment/writers=%d", writers), func(b *testing.B) {
			cfg := queue.DefaultConfig(b.TempDir())
			cfg.Logger = quiet()
			q, err := queue.Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			cpu := measureCPU()
			queuetest.BenchPut(b, q, writers, size)
			reportCPU(b, cpu, false)
		})
		b.Run(fmt.Sprintf("backend=postgres/writers=%d", writers), func(b *testing.B) {
			var batches, requests atomic.Int64
			q := openQueue(b, Config{URL: newDB(b), MaxConns: 40, OnCommit: func(s queue.CommitStats) {
				batches.Add(1)
				requests.Add(int64(s.Requests))
			}})
			cpu := measureCPU()
			queuetest.BenchPut(b, q, writers, size)
			reportCPU(b, cpu, true)
			if n := batches.Load(); n > 0 {
				b.ReportMetric(float64(requests.Load())/float64(n), "puts/commit")
			}
		})
		for _, notify := range []bool{false, true} {
			name := "postgres-naive"
			if notify {
				name += "-notify"
			}
			b.Run(fmt.Sprintf("backend=%s/writers=%d", name, writers), func(b *testing.B) {
				q := openQueue(b, Config{URL: newDB(b), MaxConns: 40})
				cpu := measureCPU()
				queuetest.BenchPut(b, &naiveStore{q: q, pool: q.pool, notify: notify}, writers, size)
				reportCPU(b, cpu, true)
			})
		}
	}
}

// naiveStore is the baseline: the same rows as Queue.Put, one transaction
// (and so one WAL flush) per message, written the obvious way (a statement
// per row). With notify it also sends, in the transaction, the NOTIFY that
// wakes idle nodes (which PostgreSQL serialises with the COMMIT of every
// other notifying transaction); without, it does less than a Put must.
type naiveStore struct {
	q      *Queue
	pool   *pgxpool.Pool
	notify bool
}

// NewID returns a queue ID from the queue the baseline writes into.
func (n *naiveStore) NewID() string { return n.q.NewID() }

// Put stores a message in one transaction of its own.
func (n *naiveStore) Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	if env.ID == "" {
		env.ID = n.q.NewID()
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	err = pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO ferry_messages (id, envelope, body, size, arrival, expires) VALUES ($1, $2, $3, $4, now(), now() + interval '5 days')`,
			env.ID, queue.EncodeEnvelope(nil, env), b, int64(len(b))); err != nil {
			return err
		}
		for i, r := range env.Rcpts {
			if _, err := tx.Exec(ctx, `INSERT INTO ferry_recipients (msg_id, idx, hop, addr) VALUES ($1, $2, $3, $4)`, env.ID, i, queue.HopKey(r.Addr), r.Addr.Address()); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ferry_groups (msg_id, hop) VALUES ($1, $2)`, env.ID, queue.HopKey(env.Rcpts[0].Addr)); err != nil {
			return err
		}
		if n.notify {
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, 'put')`, notifyChannel)
			return err
		}
		return nil
	})
	return env.ID, err
}
