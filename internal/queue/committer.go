package queue

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// request is a group of records that must be written together, in order,
// into one segment; the committer fills in where they went.
type request struct {
	recs [][]byte
	// lazy says the waiter may be woken once the records are written,
	// before they are on stable storage (see submitLazy).
	lazy bool
	seg  *segment
	offs []int64 // offset of each record in seg
	err  error
	done chan struct{}
	// report marks a generated report's message record, which may use
	// half of the reserve (see PutReport).
	report bool
}

func (r *request) size() int64 {
	var n int64
	for _, b := range r.recs {
		n += int64(len(b))
	}
	return n
}

// committer is the one goroutine that writes the log: it gathers every
// pending request, writes them with one write, calls fdatasync once and then
// wakes every waiter (group commit).
type committer struct {
	q    *Queue
	mu   sync.Mutex
	pend []*request
	// stopped is set once the committer took its last batch: requests
	// after it fail with ErrClosed.
	stopped bool
	kick    chan struct{}
	stop    chan struct{}
	exit    chan struct{}
	// freed is kicked when segments were removed: the next spare may fit.
	freed chan struct{}

	// Owned by the committer goroutine.
	active *segment
	// dirty is the end of a region after active.end that a failed write
	// may have left garbage in; it is zeroed before anything else is
	// written.
	dirty int64
	buf   []byte
	// spare receives the next segment file, zero-filled in the
	// background; preparing says a preparation is running, ready holds
	// its file once it succeeded.
	spare     chan spareFile
	preparing bool
	ready     segFile
	// readyReused says the ready file held records before (it was a
	// segment): what follows the records of its next use is not zero.
	readyReused bool
	// pool is a finished segment kept for reuse (poolName) as the next
	// spare, instead of zero-filling a new file; pooled receives it
	// from the collector, and poolTaken says the collector may not
	// offer another (one is pooled or on its way).
	pool      segFile
	pooled    chan segFile
	poolTaken atomic.Bool
	// retry fires when the next spare should be tried again after it did
	// not fit or failed; nil when none is due.
	retry *time.Timer
	// unsynced says lazy records were written to the active segment
	// since its last fdatasync; syncAt fires lazySyncDelay after the
	// first of them (nil when none is due). lazy counts them for the
	// CommitStats of the fdatasync that covers them.
	unsynced bool
	syncAt   *time.Timer
	lazy     CommitStats
	// roomAt fires while new mail is refused for the reserve, to see
	// whether room came back without a Put (space freed outside the
	// spool, say; see checkRoom).
	roomAt *time.Timer

	// The spool's write health (see space.go), safe for any goroutine.
	health
	// undone are finished messages whose done record could not be
	// written, retried from the collector no sooner than undoneAt;
	// guarded by q.mu.
	undone   []*msg
	undoneAt time.Time
}

// spareFile is a prepared segment file under its temporary name; reused
// when it was a segment before.
type spareFile struct {
	f      segFile
	err    error
	reused bool
}

// spareName is the temporary name of the prepared next segment; poolName
// that of a finished segment kept to be the spare after it.
const spareName, poolName = "spare.tmp", "free.tmp"

func newCommitter(q *Queue, active *segment) *committer {
	return &committer{
		q:      q,
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		exit:   make(chan struct{}),
		active: active,
		spare:  make(chan spareFile, 1),
		pooled: make(chan segFile, 1),
		freed:  make(chan struct{}, 1),
		health: newHealth(q.log),
	}
}

// takeSpares starts the committer with the files a previous run left
// prepared (see keepSpares).
func (c *committer) takeSpares(sp spares) {
	c.ready, c.readyReused, c.pool = sp.ready, sp.readyReused, sp.pool
	c.spareReady.Store(sp.ready != nil)
	c.poolTaken.Store(sp.pool != nil)
}

// submit queues records for the next commit. Callers that need log order
// between their records and others' hold the queue lock while submitting.
func (c *committer) submit(recs ...[]byte) *request {
	return c.enqueue(&request{recs: recs, done: make(chan struct{})})
}

// lazySyncDelay bounds how long records submitted with submitLazy stay
// written but not yet on stable storage when no other commit syncs them.
const lazySyncDelay = 50 * time.Millisecond

// submitLazy queues records whose loss in a crash of the machine (not of
// the process: they are written at once) can only cause work to be done
// again, never mail to be lost: a sent state, a done record. Its waiter is
// woken once the records are written; their fdatasync is the next one the
// committer makes for other records (a Put), or at most lazySyncDelay
// later, and always before the segment is left or a segment removed.
func (c *committer) submitLazy(recs ...[]byte) *request {
	return c.enqueue(&request{recs: recs, lazy: true, done: make(chan struct{})})
}

// syncBarrier returns once every record written so far is on stable
// storage (or syncing failed).
func (c *committer) syncBarrier() error {
	r := c.enqueue(&request{done: make(chan struct{})})
	<-r.done
	return r.err
}

func (c *committer) enqueue(r *request) *request {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		r.err = ErrClosed
		close(r.done)
		return r
	}
	c.pend = append(c.pend, r)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return r
}

// run is the committer loop; it drains pending requests before it exits.
func (c *committer) run() {
	defer close(c.exit)
	defer c.closeSpare()
	c.prepare()
	var spare []*request
	for {
		var retry, syncAt, roomAt <-chan time.Time
		if c.retry != nil {
			retry = c.retry.C
		}
		if c.roomAt != nil {
			roomAt = c.roomAt.C
		}
		if c.syncAt != nil {
			syncAt = c.syncAt.C
		}
		select {
		case <-c.kick:
		case <-syncAt:
			c.syncAt = nil
			c.syncLazy()
			continue
		case <-roomAt:
			c.roomAt = nil
			c.checkRoom()
			continue
		case sp := <-c.spare:
			c.gotSpare(sp)
			continue
		case f := <-c.pooled:
			c.pool = f
			if c.retry != nil { // a spare that did not fit: this one needs no space
				c.retry.Stop()
				c.retry = nil
			}
			c.prepare()
			continue
		case <-retry:
			c.retry = nil
			c.prepare()
			continue
		case <-c.freed:
			if c.retry != nil {
				c.retry.Stop()
				c.retry = nil
			}
			c.prepare()
			continue
		case <-c.stop:
			c.mu.Lock()
			batch := c.pend
			c.pend, c.stopped = nil, true
			c.mu.Unlock()
			if len(batch) > 0 {
				c.commit(batch)
			}
			c.syncLazy()
			return
		}
		c.mu.Lock()
		batch := c.pend
		c.pend = spare[:0]
		c.mu.Unlock()
		if len(batch) > 0 {
			c.commit(batch)
		}
		clear(batch)
		spare = batch
	}
}

// commitStats describes the commit of rs, n octets, synced in d.
func commitStats(rs []*request, n int, d time.Duration) CommitStats {
	st := CommitStats{Requests: len(rs), Bytes: n, Sync: d}
	for _, r := range rs {
		st.Records += len(r.recs)
	}
	return st
}

func finish(rs []*request, err error) {
	for _, r := range rs {
		r.err = err
		close(r.done)
	}
}

// commit writes a batch, rotating to a new segment when the active one is
// full. A request never spans two segments.
func (c *committer) commit(batch []*request) {
	batch = c.admit(batch)
	i := 0
	for i < len(batch) {
		if c.dirty > c.active.end {
			if err := c.repair(); err != nil {
				c.failedWrite(err)
				finish(batch[i:], err)
				return
			}
		}
		start := i
		c.buf = c.buf[:0]
		avail := c.active.size - c.active.end
		for i < len(batch) {
			n := batch[i].size()
			if int64(len(c.buf))+n > avail && !(len(c.buf) == 0 && c.active.empty()) {
				break
			}
			for _, b := range batch[i].recs {
				p := len(c.buf)
				c.buf = append(c.buf, b...)
				// Length, generation and CRC for this segment: the
				// CRC is computed here, once, over the copy written.
				sealRecordGen(c.buf[p:], c.active.gen)
			}
			i++
		}
		if start == i {
			if err := c.rotate(); err != nil {
				c.failedCreate(err)
				finish(batch[i:], err)
				return
			}
			continue
		}
		off := c.active.end
		var err error
		if len(c.buf) > 0 {
			_, err = c.active.f.WriteAt(c.buf, off)
		}
		if err == nil {
			err = c.syncFor(batch[start:i], len(c.buf))
		}
		if err != nil {
			c.dirty = max(c.dirty, off+int64(len(c.buf)))
			err = fmt.Errorf("write segment %s: %w", c.active.path, err)
			c.failedWrite(err)
			finish(batch[start:i], err)
			continue
		}
		c.written()
		pos := off
		for _, r := range batch[start:i] {
			r.seg = c.active
			r.offs = make([]int64, len(r.recs))
			for k, b := range r.recs {
				r.offs[k] = pos
				pos += int64(len(b))
			}
		}
		c.q.mu.Lock()
		c.active.end = pos
		if c.active.end > c.active.size {
			c.active.size = c.active.end
		}
		c.q.mu.Unlock()
		finish(batch[start:i], nil)
	}
}

// syncFor makes the records just written for rs durable, unless every one
// of rs is lazy: then the fdatasync is left for later (see submitLazy).
func (c *committer) syncFor(rs []*request, n int) error {
	st := commitStats(rs, n, 0)
	lazy := true
	for _, r := range rs {
		lazy = lazy && r.lazy
	}
	if lazy {
		c.lazy.Requests += st.Requests
		c.lazy.Records += st.Records
		c.lazy.Bytes += st.Bytes
		if !c.unsynced {
			c.unsynced = true
			c.syncAt = time.NewTimer(lazySyncDelay)
		}
		return nil
	}
	syncStart := time.Now()
	if err := c.active.f.Datasync(); err != nil {
		return err
	}
	st.Requests += c.lazy.Requests
	st.Records += c.lazy.Records
	st.Bytes += c.lazy.Bytes
	st.Sync = time.Since(syncStart)
	c.synced()
	if c.q.cfg.OnCommit != nil {
		c.q.cfg.OnCommit(st)
	}
	return nil
}

// synced notes that nothing written is waiting for an fdatasync.
func (c *committer) synced() {
	c.unsynced, c.lazy = false, CommitStats{}
	if c.syncAt != nil {
		c.syncAt.Stop()
		c.syncAt = nil
	}
}

// syncLazy makes the lazy records written to the active segment durable.
// Their waiters have gone on already, so a failure is only logged (as a
// write episode): a lost sent or done record means a delivery or a
// report is made again, not mail lost.
func (c *committer) syncLazy() {
	if !c.unsynced {
		return
	}
	st := c.lazy
	start := time.Now()
	if err := c.active.f.Datasync(); err != nil {
		c.failedWrite(fmt.Errorf("sync segment %s: %w", c.active.path, err))
		c.synced()
		return
	}
	st.Sync = time.Since(start)
	c.synced()
	if c.q.cfg.OnCommit != nil && st.Requests > 0 {
		c.q.cfg.OnCommit(st)
	}
}

// repair zeroes what a failed write may have left after the end of the
// records, so that recovery never finds records whose commit failed.
func (c *committer) repair() error {
	zero := make([]byte, c.dirty-c.active.end)
	if _, err := c.active.f.WriteAt(zero, c.active.end); err != nil {
		return fmt.Errorf("repair segment %s after failed write: %w", c.active.path, err)
	}
	if err := c.active.f.Datasync(); err != nil {
		return fmt.Errorf("repair segment %s after failed write: %w", c.active.path, err)
	}
	c.dirty = 0
	return nil
}

// rotate makes the next segment active: the prepared spare when there is
// one, else a file created now, if the file system has room for it. It
// then starts preparing the next spare.
func (c *committer) rotate() error {
	q := c.q
	c.syncLazy() // records of the segment being left are synced before any of the next
	no := c.active.no + 1
	path := filepath.Join(q.cfg.Dir, segName(no))
	gen := q.gen.Add(1)
	f, kind := c.takeSpare(path, gen)
	if f == nil {
		var err error
		kind = kindFresh
		f, err = c.createNow(path, gen)
		if err != nil {
			// Keep trying to prepare a spare meanwhile, so that a
			// spool that becomes writable again is noticed without
			// waiting for the next write.
			if !c.preparing {
				c.spareLater(spareRetry)
			}
			return err
		}
	}
	s := &segment{no: no, path: path, f: f, size: q.cfg.SegmentSize, base: gen, gen: gen, kind: kind, end: segHeaderSize}
	q.mu.Lock()
	q.segs = append(q.segs, s)
	q.active = s
	q.mu.Unlock()
	c.active = s
	c.dirty = 0
	c.created()
	q.gcKick()
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
	c.prepare()
	return nil
}

// createNow creates the segment file path of generation gen at once, if
// the file system has room for it.
func (c *committer) createNow(path string, gen uint64) (segFile, error) {
	q := c.q
	if free, err := q.fs.Free(q.cfg.Dir); err == nil && free < q.cfg.SegmentSize {
		return nil, fmt.Errorf("create segment %s: %d octets free, %d needed: %w", path, free, q.cfg.SegmentSize, syscall.ENOSPC)
	}
	return createSegment(q.fs, path, q.cfg.SegmentSize, gen)
}

// createSegment creates a zero-filled segment file of generation gen.
func createSegment(fs fileLayer, path string, size int64, gen uint64) (segFile, error) {
	f, err := fs.Create(path, size)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	if err := writeSegHeader(f, segHeader{kind: kindFresh, base: gen, gen: gen}); err != nil {
		f.Close()
		fs.Remove(path)
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	return f, nil
}
