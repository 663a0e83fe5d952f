package queue

import (
	"fmt"
	"path/filepath"
	"time"
)

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
	path := filepath.Join(q.cfg.Dir, spareName)
	if f := c.pool; f != nil {
		// A finished segment: renamed, not zero-filled, and it needs
		// no space. The rename is done here, not in the background, so
		// that poolName is free again at once for the next segment the
		// collector finishes (else that one would be removed, and the
		// spare after it zero-filled).
		c.pool, c.preparing = nil, true
		err := q.fs.Rename(filepath.Join(q.cfg.Dir, poolName), path)
		if err != nil {
			f.Close()
			q.fs.Remove(filepath.Join(q.cfg.Dir, poolName))
			f = nil
		}
		c.gotSpare(spareFile{f: f, err: err, reused: true})
		return
	}
	if free, err := q.fs.Free(q.cfg.Dir); err == nil && free < q.cfg.SegmentSize+q.cfg.Reserve {
		c.spareLater(spareRetry)
		return
	}
	c.preparing = true
	q.fs.Remove(path)
	go func() {
		f, err := q.fs.Create(path, q.cfg.SegmentSize)
		c.spare <- spareFile{f: f, err: err}
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
	if sp.reused {
		c.poolTaken.Store(false) // poolName is free again
	}
	if sp.err != nil {
		c.spareLater(c.failedCreate(fmt.Errorf("prepare the next segment: %w", sp.err)))
		return
	}
	c.ready, c.readyReused = sp.f, sp.reused
	c.spareReady.Store(true)
	c.q.reportSpace() // a report that did not fit may fit now
	// A segment file was just created: new mail has room again. A write
	// episode ends only with a write to the active segment (this file may
	// have been made before the writes began to fail).
	c.created()
	c.fullEp.OK()
}

// takeSpare waits for the prepared segment file, if one is being prepared,
// gives it the header of a segment of generation gen and renames it to
// path. It returns the kind of segment it made.
func (c *committer) takeSpare(path string, gen uint64) (segFile, byte) {
	if c.preparing {
		c.gotSpare(<-c.spare)
	}
	f := c.ready
	if f == nil {
		return nil, 0
	}
	kind := kindFresh
	if c.readyReused {
		kind = kindReused
	}
	c.ready = nil
	c.spareReady.Store(false)
	err := writeSegHeader(f, segHeader{kind: kind, base: gen, gen: gen})
	if err == nil {
		err = c.q.fs.Rename(filepath.Join(c.q.cfg.Dir, spareName), path)
	}
	if err != nil {
		f.Close()
		c.q.fs.Remove(filepath.Join(c.q.cfg.Dir, spareName))
		return nil, 0
	}
	return f, kind
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
	// A spare made from a finished segment and the pooled one stay for
	// the next start (they are marked free); a zero-filled spare has no
	// header, and the next start prepares a new one.
	if c.ready != nil {
		c.ready.Close()
		if !c.readyReused {
			c.q.fs.Remove(filepath.Join(c.q.cfg.Dir, spareName))
		}
		c.ready = nil
		c.spareReady.Store(false)
	}
	select {
	case f := <-c.pooled:
		c.pool = f
	default:
	}
	if c.pool != nil {
		c.pool.Close()
		c.pool = nil
	}
}
