package pgqueue

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/queue/queuetest"
	"github.com/ferrymta/ferry/internal/smtp"
)

// BenchmarkPut measures durable Put of 4 KiB messages at 1, 8 and 32
// writers for both backends in one run: the segment log, the shared queue
// with group commit, and a naive shared queue that commits one transaction
// per message on the same PostgreSQL (the baseline group commit is measured
// against).
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
			queuetest.BenchPut(b, q, writers, size)
		})
		b.Run(fmt.Sprintf("backend=postgres/writers=%d", writers), func(b *testing.B) {
			q := openQueue(b, Config{URL: newDB(b), MaxConns: 40})
			queuetest.BenchPut(b, q, writers, size)
		})
		b.Run(fmt.Sprintf("backend=postgres-naive/writers=%d", writers), func(b *testing.B) {
			q := openQueue(b, Config{URL: newDB(b), MaxConns: 40})
			queuetest.BenchPut(b, &naiveStore{q: q, pool: q.pool}, writers, size)
		})
	}
}

// naiveStore is the baseline: the same rows as Queue.Put, one transaction
// (and so one WAL flush) per message.
type naiveStore struct {
	q    *Queue
	pool *pgxpool.Pool
}

func (n *naiveStore) NewID() string { return n.q.NewID() }

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
		_, err := tx.Exec(ctx, `INSERT INTO ferry_groups (msg_id, hop) VALUES ($1, $2)`, env.ID, queue.HopKey(env.Rcpts[0].Addr))
		return err
	})
	return env.ID, err
}
