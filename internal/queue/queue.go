package queue

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Errors returned by the queue.
var (
	ErrClosed    = errors.New("queue: closed")
	ErrNotFound  = errors.New("queue: no such message")
	ErrAmbiguous = errors.New("queue: ID prefix matches more than one message")
	ErrExists    = errors.New("queue: message ID already queued")
	ErrFinal     = errors.New("queue: recipient already has a final state")
	ErrTooLarge  = errors.New("queue: message too large for one record")
)

// Queue is the durable message store and delivery scheduler. Its methods
// are safe for concurrent use.
type Queue struct {
	cfg  Config
	log  *slog.Logger
	fs   fileLayer
	lock *os.File
	// freeSpace returns the octets free for the spool; nil: statfs(2).
	// Tests set it to play a full disk.
	freeSpace func(dir string) (int64, error)

	mu        sync.Mutex
	msgs      map[string]*msg
	hops      map[string]*hop
	hopHeap   hopHeap
	leases    map[uint64]*leaseState
	nextLease uint64
	segs      []*segment // ascending; the last is active
	active    *segment
	closed    bool
	wake      chan struct{} // closed and replaced when work may have changed
	stats     Stats

	c *committer
	// gen is the highest segment generation given out (segheader.go).
	gen atomic.Uint64
	// scanner scans content at receipt, reusing its buffers.
	scanner downgrade.Scanner
	// mem bounds the message content held in memory by Put calls.
	mem *MemBudget

	ids *IDGen

	gcCh chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	// reports are the finished messages kept until their report is
	// queued (see reports.go).
	reports reportWait
}

// Open opens (creating if needed) the spool in cfg.Dir, recovers its
// contents and starts the committer and the segment collector.
func Open(cfg Config) (*Queue, error) { return openWith(cfg, osLayer{}) }

func openWith(cfg Config, fs fileLayer) (*Queue, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("queue: create spool directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: open lock file: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("queue: spool %s is in use by another process: %w", cfg.Dir, err)
	}
	q := &Queue{
		cfg:    cfg,
		log:    cfg.Logger,
		fs:     fs,
		lock:   lock,
		msgs:   make(map[string]*msg),
		hops:   make(map[string]*hop),
		leases: make(map[uint64]*leaseState),
		wake:   make(chan struct{}),
		ids:    NewIDGen(cfg.Clock, rand.Uint64()),
		gcCh:   make(chan struct{}, 1),
		mem:    NewMemBudget(cfg.MaxBufferedBytes),
		stop:   make(chan struct{}),
	}
	q.reports = newReportWait(cfg.Logger)
	unfinished, err := q.recover()
	if err != nil {
		q.closeFiles()
		lock.Close()
		return nil, err
	}
	sp := q.keepSpares()
	s, err := q.startSegment()
	if err != nil {
		q.closeFiles()
		for _, f := range []segFile{sp.ready, sp.pool} {
			if f != nil {
				f.Close()
			}
		}
		lock.Close()
		return nil, err
	}
	q.active = s
	q.c = newCommitter(q, s)
	q.c.takeSpares(sp)
	q.wg.Add(1)
	go func() { defer q.wg.Done(); q.c.run() }()
	if !cfg.Offline { // the server collects segments when it runs again
		q.wg.Add(1)
		go func() { defer q.wg.Done(); q.gcLoop() }()
	}
	if len(unfinished) > 0 && !cfg.Offline {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			for _, m := range unfinished {
				q.finishMessage(m, true)
			}
		}()
	}
	return q, nil
}

// Close stops the queue after pending writes are committed. Leases still
// out are abandoned; their work is due at the next Open.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.notify()
	q.mu.Unlock()
	close(q.stop)
	close(q.c.stop)
	q.wg.Wait()
	q.mu.Lock()
	err := q.closeFiles()
	q.mu.Unlock()
	q.lock.Close()
	return err
}

func (q *Queue) closeFiles() error {
	var first error
	for _, s := range q.segs {
		if err := s.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// notify wakes every goroutine waiting for work. Callers hold q.mu.
func (q *Queue) notify() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// now returns the clock's time in Unix nanoseconds.
func (q *Queue) now() int64 { return q.cfg.Clock().UnixNano() }

// NewID returns a new queue ID (see IDGen); the tag is chosen at random at
// Open, so IDs stay unique across restarts.
func (q *Queue) NewID() string { return q.ids.Next() }

// Put stores a message durably and schedules its recipients. It returns
// only once the message is on stable storage. env.ID is used as the queue ID
// (one is assigned when empty) and env.Arrival is set when zero. A body read
// error aborts Put before anything is written. A full disk yields an error
// wrapping syscall.ENOSPC.
func (q *Queue) Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	return q.put(ctx, env, body, false)
}

// put is Put; report marks a generated report (PutReport).
func (q *Queue) put(ctx context.Context, env *smtp.Envelope, body io.Reader, report bool) (string, error) {
	if env.ID == "" {
		env.ID = q.NewID()
	}
	if env.Arrival.IsZero() {
		env.Arrival = q.cfg.Clock()
	}
	// Read the body first, whatever happens next: the server's DATA
	// reader must always reach its end.
	// The content is scanned once, here, and the result kept with the
	// message; the envelope carries a placeholder filled in after the
	// body is read.
	env.ContentScan = &downgrade.Needs{}
	// Room for the SIZE= the client declared (RFC 1870), up to a bound,
	// so that the body is read without the buffer growing and being
	// copied on the way; the Received field and the envelope come on top.
	rec, bodyOff := messagePrefix(make([]byte, 0, recordStart+min(max(env.Size, 0), maxPresize)), env)
	slot := scanSlot(rec, bodyOff)
	if slot < 0 { // another extension came last: store no scan
		env.ContentScan = nil
		rec, bodyOff = messagePrefix(rec[:0], env)
	}
	rec, held, err := q.mem.ReadBody(ctx, rec, body, q.cfg.MemoryWait, maxPayload)
	if err != nil {
		env.ContentScan = nil
		return "", wrapf(err, "read message body")
	}
	defer q.mem.Release(held)
	if slot >= 0 {
		scanAtReceipt(&q.scanner, rec, slot, bodyOff, env)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if len(env.ID) > maxIDLen {
		return "", fmt.Errorf("queue: ID %q longer than %d octets", env.ID, maxIDLen)
	}
	if len(env.Rcpts) == 0 {
		return "", errors.New("queue: message has no recipients")
	}
	// The committer seals the record (length, generation, CRC) as it
	// writes it.
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return "", ErrClosed
	}
	if q.msgs[env.ID] != nil {
		q.mu.Unlock()
		return "", fmt.Errorf("%w: %s", ErrExists, env.ID)
	}
	req := q.c.submitMessage(rec, report)
	q.mu.Unlock()
	<-req.done
	if req.err != nil {
		return "", wrapf(req.err, "store message %s", env.ID)
	}
	q.mu.Lock()
	m := q.newMsg(env, loc{req.seg, req.offs[0]}, len(rec), bodyOff)
	q.msgs[m.id] = m
	for _, g := range m.groups {
		q.schedule(g)
	}
	q.notify()
	q.mu.Unlock()
	q.log.Debug("stored", "id", env.ID, "from", pathString(env.From), "rcpts", len(env.Rcpts), "size", len(rec)-bodyOff)
	return env.ID, nil
}

// recordStart is the first buffer of a Put beyond the declared size: the
// record header, envelope and Received field fit; maxPresize bounds how
// much of a declared size is allocated before the content arrives.
const (
	recordStart = 4096 + 512
	maxPresize  = 1 << 20
)

// pathString formats a path for logs.
func pathString(p smtp.Path) string {
	if p.IsNull() {
		return "<>"
	}
	return "<" + p.LocalPart + "@" + p.Domain + ">"
}

// readRecord reads and checks the whole record at l with length n.
func readRecord(l loc, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := l.seg.f.ReadAt(b, l.off); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", l.seg.path, l.off, err)
	}
	if _, k, ok := parseHeader(b); !ok || k != n-headerSize || !checkCRCGen(b, l.seg.recordGen(b)) {
		return nil, fmt.Errorf("%w in %s at %d", errCorrupt, l.seg.path, l.off)
	}
	return b, nil
}

// smallRecord is how much readRecordAt reads at first: state, hold,
// retry and done records fit, so they take one pread(2).
const smallRecord = 512

// readRecordAt reads the record at l whose length is in its header.
func readRecordAt(l loc) ([]byte, error) {
	b := make([]byte, smallRecord)
	k, err := l.seg.f.ReadAt(b, l.off)
	if k < headerSize {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %s at %d: %w", l.seg.path, l.off, err)
	}
	_, n, ok := parseHeader(b)
	if !ok {
		return nil, fmt.Errorf("%w in %s at %d", errCorrupt, l.seg.path, l.off)
	}
	if headerSize+n > k {
		return readRecord(l, headerSize+n)
	}
	b = b[:headerSize+n]
	if !checkCRCGen(b, l.seg.recordGen(b)) {
		return nil, fmt.Errorf("%w in %s at %d", errCorrupt, l.seg.path, l.off)
	}
	return b, nil
}

// loadEnvelope reads m's envelope from its message record. Callers hold
// q.mu or a reader reference on the segment.
func loadEnvelope(id string, l loc, bodyOff int) (*smtp.Envelope, error) {
	b := make([]byte, bodyOff)
	if _, err := l.seg.f.ReadAt(b, l.off); err != nil {
		return nil, fmt.Errorf("read envelope of %s: %w", id, err)
	}
	r, err := decodeRecordPrefix(b)
	if err != nil {
		return nil, fmt.Errorf("envelope of %s: %w", id, err)
	}
	e, _, err := splitMessage(r.rest)
	if err != nil {
		return nil, fmt.Errorf("envelope of %s: %w", id, err)
	}
	return decodeEnvelope(id, e)
}

// decodeRecordPrefix decodes the header and ID of a record prefix without
// checking the CRC (which needs the whole record).
func decodeRecordPrefix(b []byte) (record, error) {
	if len(b) < headerSize+1 {
		return record{}, errCorrupt
	}
	t, _, ok := parseHeader(b)
	l := int(b[headerSize])
	if !ok || l == 0 || headerSize+1+l > len(b) {
		return record{}, errCorrupt
	}
	return record{typ: t, id: string(b[headerSize+1 : headerSize+1+l]), rest: b[headerSize+1+l:]}, nil
}

// bodyOpener returns a function that opens m's stored body. The reader
// checks the record's CRC when it reaches the end.
func (q *Queue) bodyOpener(id string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		q.mu.Lock()
		m := q.msgs[id]
		if m == nil {
			q.mu.Unlock()
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		l, n, off := m.base, int64(m.recLen), int64(m.bodyOff)
		l.seg.readers++
		q.mu.Unlock()
		return &bodyReader{q: q, l: l, n: n, bodyOff: off}, nil
	}
}

// bodyReader streams a message body from its segment, computing the
// record's CRC as it goes.
type bodyReader struct {
	q       *Queue
	l       loc
	n       int64 // record length
	bodyOff int64
	pos     int64 // next offset within the record
	crc     uint32
	want    uint32
	closed  bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.pos == 0 && int64(len(p)) >= r.n {
		// The whole record fits: one pread(2), the body moved to the
		// front.
		return r.readWhole(p)
	}
	if r.pos == 0 {
		pre := make([]byte, r.bodyOff)
		if _, err := r.l.seg.f.ReadAt(pre, r.l.off); err != nil {
			return 0, fmt.Errorf("queue: read body: %w", err)
		}
		r.want = leUint32(pre[8:12])
		r.crc = crc32.Update(crcSeed(r.l.seg.recordGen(pre)), castagnoli(), pre[:8])
		r.crc = crc32.Update(r.crc, castagnoli(), pre[headerSize:])
		r.pos = r.bodyOff
	}
	if r.pos >= r.n {
		if r.crc != r.want {
			return 0, wrapf(errCorrupt, "body of record at %s:%d (CRC mismatch)", r.l.seg.path, r.l.off)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > r.n-r.pos {
		p = p[:r.n-r.pos]
	}
	k, err := r.l.seg.f.ReadAt(p, r.l.off+r.pos)
	r.crc = crc32.Update(r.crc, castagnoli(), p[:k])
	r.pos += int64(k)
	if err == io.EOF && r.pos < r.n {
		return k, io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		return k, fmt.Errorf("queue: read body: %w", err)
	}
	return k, nil
}

// readWhole reads the whole record into p, checks its CRC and returns the
// body at the start of p; the next Read reports the end.
func (r *bodyReader) readWhole(p []byte) (int, error) {
	k, err := r.l.seg.f.ReadAt(p[:r.n], r.l.off)
	if int64(k) < r.n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("queue: read body: %w", err)
	}
	rec := p[:r.n]
	if !checkCRCGen(rec, r.l.seg.recordGen(rec)) {
		return 0, wrapf(errCorrupt, "body of record at %s:%d (CRC mismatch)", r.l.seg.path, r.l.off)
	}
	n := copy(p, rec[r.bodyOff:])
	r.pos = r.n
	r.crc, r.want = 0, 0
	return n, nil
}

func (r *bodyReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.q.mu.Lock()
	r.l.seg.readers--
	r.q.mu.Unlock()
	return nil
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// since returns the time since arrival (Unix nanoseconds) at now.
func since(arrival, now int64) time.Duration { return time.Duration(now - arrival) }
