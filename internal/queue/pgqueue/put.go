package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// putReq is one Put waiting for a group commit.
type putReq struct {
	id       string
	envelope []byte
	body     []byte
	arrival  time.Time
	expires  time.Time
	rcptHops []string // each recipient's next-hop key
	addrs    []string // each recipient's address
	hops     []string // the distinct next-hop keys
	done     chan error
}

// maxBody bounds one stored message (bytea values are at most 1 GiB).
const maxBody = 512 << 20

// bodyCap is the buffer a body is first read into: the SIZE the client
// declared (RFC 1870 §6) with room to see the end without growing, so that
// a typical body is read with one allocation and no copy; at least 4 KiB and
// at most 1 MiB, so that a false SIZE reserves little.
func bodyCap(declared int64) int {
	return int(min(max(declared+512, 4<<10), 1<<20))
}

// Put stores a message and returns once the transaction holding it (and
// the other Puts gathered with it) has committed, with synchronous_commit
// as the server has it. The body is read whole first, on every path.
func (q *Queue) Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	r, held, err := q.prepare(ctx, env, body)
	if err != nil {
		return "", err
	}
	defer q.mem.Release(held)
	// sendMu keeps Close from stopping the committers while a request is
	// being handed to them.
	q.sendMu.RLock()
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		q.sendMu.RUnlock()
		return "", queue.ErrClosed
	}
	select {
	case q.puts <- r:
	case <-ctx.Done():
		q.sendMu.RUnlock()
		return "", ctx.Err()
	}
	q.sendMu.RUnlock()
	// The request is committed or failed by a committer in any case; wait
	// for the outcome even if ctx ends, so that a 250 is never lost.
	if err := <-r.done; err != nil {
		return "", fmt.Errorf("queue: store message %s in PostgreSQL at %s: %w", env.ID, q.where, err)
	}
	q.log.Debug("stored", "id", env.ID, "rcpts", len(env.Rcpts), "size", len(r.body))
	return env.ID, nil
}

// prepare reads a message's body within the memory budget and builds its
// request; the caller releases held bytes of the budget once the request
// is done.
func (q *Queue) prepare(ctx context.Context, env *smtp.Envelope, body io.Reader) (r *putReq, held int64, err error) {
	if env.ID == "" {
		env.ID = q.NewID()
	}
	if env.Arrival.IsZero() {
		env.Arrival = time.Now()
	}
	// Read the body first, whatever happens next: the server's DATA reader
	// must always reach its end. The budget bounds what all sessions hold.
	b, held, err := q.mem.ReadBody(ctx, make([]byte, 0, bodyCap(env.Size)), body, q.cfg.MemoryWait, maxBody)
	if err != nil {
		return nil, 0, fmt.Errorf("queue: read message body: %w", err)
	}
	if err := ctx.Err(); err != nil {
		q.mem.Release(held)
		return nil, 0, err
	}
	if len(env.Rcpts) == 0 {
		q.mem.Release(held)
		return nil, 0, errors.New("queue: message has no recipients")
	}
	r = &putReq{id: env.ID, envelope: queue.EncodeEnvelope(nil, env), body: b, arrival: env.Arrival,
		expires: env.Arrival.Add(q.lifetime(env.From.IsNull())), done: make(chan error, 1),
		rcptHops: make([]string, len(env.Rcpts)), addrs: make([]string, len(env.Rcpts))}
	for i, rc := range env.Rcpts {
		h := queue.HopKey(rc.Addr)
		r.rcptHops[i], r.addrs[i] = h, rc.Addr.Address()
		if !slices.Contains(r.hops, h) {
			r.hops = append(r.hops, h)
		}
	}
	return r, held, nil
}

// inFlight tracks the group commits under way, so that a committer does not
// send a small batch while another one's commit is still running.
type inFlight struct {
	mu    sync.Mutex
	n     int           // commits under way
	last  int           // requests in the most recent batch sent
	ended chan struct{} // closed (and replaced) when a commit ends
}

// state returns whether a commit is under way, the size of the last batch
// sent, and a channel closed when a commit ends.
func (f *inFlight) state() (busy bool, last int, ended <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n > 0, f.last, f.ended
}

// begin records a batch of n requests sent.
func (f *inFlight) begin(n int) {
	f.mu.Lock()
	f.n++
	f.last = n
	f.mu.Unlock()
}

// end records a commit ended.
func (f *inFlight) end() {
	f.mu.Lock()
	f.n--
	close(f.ended)
	f.ended = make(chan struct{})
	f.mu.Unlock()
}

// commitLoop gathers waiting Puts into one transaction at a time: every
// request waiting when the first arrives. With more than one committer, a
// committer that finds another's commit under way keeps gathering until
// its batch is as large as the last one sent or that commit ends: the
// commits then overlap (one is executed while the other waits for its WAL
// flush) without splitting the writers into ever smaller batches, each of
// which pays a round trip and a flush.
func (q *Queue) commitLoop(f *inFlight) {
	params := &putParams{}
	for {
		var first *putReq
		select {
		case first = <-q.puts:
		case <-q.stop:
			// Commit what is still waiting, then stop.
			for {
				select {
				case r := <-q.puts:
					q.commit([]*putReq{r}, params)
				default:
					return
				}
			}
		}
		batch := []*putReq{first}
		size := len(first.body)
	gather:
		for len(batch) < q.cfg.BatchMax && size < 32<<20 {
			select {
			case r := <-q.puts:
				batch = append(batch, r)
				size += len(r.body)
				continue
			default:
			}
			busy, last, ended := f.state()
			if !busy || len(batch) >= last {
				break gather // send what is here
			}
			select {
			case r := <-q.puts:
				batch = append(batch, r)
				size += len(r.body)
			case <-ended:
				break gather
			case <-q.stop:
				break gather
			}
		}
		f.begin(len(batch))
		q.commit(batch, params)
		f.end()
	}
}

// commit writes a batch in one transaction and answers every request. A
// batch refused for a duplicate ID is retried one request at a time, so only
// the duplicate fails.
func (q *Queue) commit(batch []*putReq, params *putParams) {
	start := time.Now()
	err := q.commitBatch(batch, params)
	if err != nil && len(batch) > 1 && isUniqueViolation(err) {
		for _, r := range batch {
			q.commit([]*putReq{r}, params)
		}
		return
	}
	if err != nil && isUniqueViolation(err) {
		err = fmt.Errorf("%w: %s", queue.ErrExists, batch[0].id)
	}
	if err == nil {
		q.notePut()
	}
	if err == nil && q.cfg.OnCommit != nil {
		n := 0
		for _, r := range batch {
			n += len(r.body) + len(r.envelope)
		}
		q.cfg.OnCommit(queue.CommitStats{Requests: len(batch), Records: len(batch), Bytes: n, Sync: time.Since(start)})
	}
	for _, r := range batch {
		r.done <- err
	}
}

// putSQL inserts a batch's messages, recipients and groups from arrays:
// one statement, so one round trip and one implicit transaction (one WAL
// flush) for the whole batch. It holds no NOTIFY: PostgreSQL serialises the
// commits of every transaction that notifies (a cluster-wide lock held until
// its commit record is flushed), so the notifier sends it after the commit
// instead (notify.go).
const putSQL = `WITH m AS (
	INSERT INTO ferry_messages (id, envelope, body, size, arrival, expires)
	SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::int8[], $5::timestamptz[], $6::timestamptz[])),
r AS (INSERT INTO ferry_recipients (msg_id, idx, hop, addr)
	SELECT * FROM unnest($7::text[], $8::int4[], $9::text[], $10::text[]))
INSERT INTO ferry_groups (msg_id, hop)
	SELECT * FROM unnest($11::text[], $12::text[])`

// isUniqueViolation reports a duplicate key (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
