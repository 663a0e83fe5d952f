package queue

import (
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// request is a group of records that must be written together, in order,
// into one segment; the committer fills in where they went.
type request struct {
	recs [][]byte
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
	kick chan struct{}
	stop chan struct{}
	exit chan struct{}
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
	// retry fires when the next spare should be tried again after it did
	// not fit or failed; nil when none is due.
	retry *time.Timer

	// The spool's write health (see space.go), safe for any goroutine.
	health
	// undone are finished messages whose done record could not be
	// written, retried from the collector no sooner than undoneAt;
	// guarded by q.mu.
	undone   []*msg
	undoneAt time.Time
}

// spareFile is a prepared segment file under its temporary name.
type spareFile struct {
	f   segFile
	err error
}

// spareName is the temporary name of the prepared next segment.
const spareName = "spare.tmp"

func newCommitter(q *Queue, active *segment) *committer {
	return &committer{
		q:      q,
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		exit:   make(chan struct{}),
		active: active,
		spare:  make(chan spareFile, 1),
		freed:  make(chan struct{}, 1),
		health: newHealth(q.log),
	}
}

// submit queues records for the next commit. Callers that need log order
// between their records and others' hold the queue lock while submitting.
func (c *committer) submit(recs ...[]byte) *request {
	return c.enqueue(&request{recs: recs, done: make(chan struct{})})
}

// enqueue hands r to the committer and returns it.
func (c *committer) enqueue(r *request) *request {
	c.mu.Lock()
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
		var retry <-chan time.Time
		if c.retry != nil {
			retry = c.retry.C
		}
		select {
		case <-c.kick:
		case sp := <-c.spare:
			c.gotSpare(sp)
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
			c.pend = nil
			c.mu.Unlock()
			if len(batch) > 0 {
				c.commit(batch)
			}
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
			if int64(len(c.buf))+n > avail && !(len(c.buf) == 0 && c.active.end == 0) {
				break
			}
			for _, b := range batch[i].recs {
				c.buf = append(c.buf, b...)
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
		_, err := c.active.f.WriteAt(c.buf, off)
		if err == nil {
			syncStart := time.Now()
			err = c.active.f.Datasync()
			if err == nil && c.q.cfg.OnCommit != nil {
				c.q.cfg.OnCommit(commitStats(batch[start:i], len(c.buf), time.Since(syncStart)))
			}
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

// spareRetry is the first wait before the next spare segment is tried
// again when it did not fit or failed; each later failure doubles it up to
// maillog.EpisodeRetryMax. Segment removals try again at once.
const spareRetry = time.Second

// prepare starts zero-filling the next segment file in the background,
// unless one is prepared or being prepared. It does not start when the
// file system would keep less than the reserve free after it, so that
// preallocation never turns a nearly full disk into a full one; it is
// tried again later (see run).
func (c *committer) prepare() {
	if c.preparing || c.ready != nil || c.retry != nil {
		return
	}
	q := c.q
	if free, err := q.fs.Free(q.cfg.Dir); err == nil && free < q.cfg.SegmentSize+q.cfg.Reserve {
		c.spareLater(spareRetry)
		return
	}
	c.preparing = true
	path := filepath.Join(q.cfg.Dir, spareName)
	q.fs.Remove(path)
	go func() {
		f, err := q.fs.Create(path, q.cfg.SegmentSize)
		c.spare <- spareFile{f, err}
	}()
}

// spareLater arms the retry of the next spare after d.
func (c *committer) spareLater(d time.Duration) {
	if c.retry == nil {
		c.retry = time.NewTimer(d)
	}
}

// gotSpare takes the result of a preparation.
func (c *committer) gotSpare(sp spareFile) {
	c.preparing = false
	if sp.err != nil {
		c.spareLater(c.failedCreate(fmt.Errorf("prepare the next segment: %w", sp.err)))
		return
	}
	c.ready = sp.f
	c.spareReady.Store(true)
	c.q.reportSpace() // a report that did not fit may fit now
	// A segment file was just created: new mail has room again. A write
	// episode ends only with a write to the active segment (this file may
	// have been made before the writes began to fail).
	c.created()
	c.fullEp.OK()
}

// takeSpare waits for the prepared segment file, if one is being prepared,
// and renames it to path.
func (c *committer) takeSpare(path string) segFile {
	if c.preparing {
		c.gotSpare(<-c.spare)
	}
	f := c.ready
	if f == nil {
		return nil
	}
	c.ready = nil
	c.spareReady.Store(false)
	if err := c.q.fs.Rename(filepath.Join(c.q.cfg.Dir, spareName), path); err != nil {
		f.Close()
		c.q.fs.Remove(filepath.Join(c.q.cfg.Dir, spareName))
		return nil
	}
	return f
}

// closeSpare waits for a running preparation and removes its file.
func (c *committer) closeSpare() {
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
	if c.preparing {
		sp := <-c.spare
		c.preparing = false
		if sp.err == nil {
			c.ready = sp.f
		}
	}
	if c.ready != nil {
		c.ready.Close()
		c.ready = nil
		c.spareReady.Store(false)
		c.q.fs.Remove(filepath.Join(c.q.cfg.Dir, spareName))
	}
}

// rotate makes the next segment active: the prepared spare when there is
// one, else a file created now, if the file system has room for it. It
// then starts preparing the next spare.
func (c *committer) rotate() error {
	q := c.q
	no := c.active.no + 1
	path := filepath.Join(q.cfg.Dir, segName(no))
	f := c.takeSpare(path)
	if f == nil {
		var err error
		f, err = c.createNow(path)
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
	s := &segment{no: no, path: path, f: f, size: q.cfg.SegmentSize}
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

// createNow creates the segment file path at once, if the file system has
// room for it.
func (c *committer) createNow(path string) (segFile, error) {
	q := c.q
	if free, err := q.fs.Free(q.cfg.Dir); err == nil && free < q.cfg.SegmentSize {
		return nil, fmt.Errorf("create segment %s: %d octets free, %d needed: %w", path, free, q.cfg.SegmentSize, syscall.ENOSPC)
	}
	f, err := q.fs.Create(path, q.cfg.SegmentSize)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	return f, nil
}
