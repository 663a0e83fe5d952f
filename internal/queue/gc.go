package queue

import (
	"path/filepath"
	"time"
)

// gcKick asks the collector to run soon.
func (q *Queue) gcKick() {
	select {
	case q.gcCh <- struct{}{}:
	default:
	}
}

// gcLoop runs segment collection every GCInterval and after rotations.
func (q *Queue) gcLoop() {
	t := time.NewTicker(q.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-t.C:
		case <-q.gcCh:
		}
		q.gcStep()
	}
}

// gcStep removes the oldest segments while no live message has a record in
// them, then, when the oldest segment is CopyForwardLag or more segments
// behind and at most half of it is still live, copies up to
// CopyForwardBatch of its messages forward. Segments go strictly oldest
// first, so a done record is never removed while an older record of the
// same message remains. It returns how many segments it removed and
// messages it copied.
func (q *Queue) gcStep() (removed, copied int) {
	q.retryDone()
	defer func() {
		if removed > 0 {
			q.c.spaceFreed()
		}
	}()
	synced := false
	for {
		q.mu.Lock()
		if q.closed || len(q.segs) < 2 {
			q.mu.Unlock()
			return removed, copied
		}
		s := q.segs[0]
		if s == q.active || s.refs > 0 || s.readers > 0 {
			q.mu.Unlock()
			break
		}
		q.mu.Unlock()
		if !synced {
			// The done records that let s go may still wait for
			// their fdatasync (submitLazy): were s removed first, a
			// crash could leave later records of its messages
			// without their message record.
			if err := q.c.syncBarrier(); err != nil {
				q.log.Warn("queue: segment kept: the log could not be synced", "segment", s.path, "err", err)
				return removed, copied
			}
			synced = true
			continue // looked at again: the queue may have changed meanwhile
		}
		q.mu.Lock()
		if q.closed || len(q.segs) < 2 || q.segs[0] != s || s == q.active || s.refs > 0 || s.readers > 0 {
			q.mu.Unlock()
			continue
		}
		q.segs = q.segs[1:]
		q.mu.Unlock()
		if !q.recycle(s) {
			s.f.Close()
			if err := q.fs.Remove(s.path); err != nil {
				q.log.Error("queue: cannot remove segment", "segment", s.path, "err", err)
			} else {
				q.log.Debug("queue: segment removed", "segment", s.path)
			}
		}
		removed++
		q.mu.Lock()
		q.stats.SegmentsRemoved++
		q.mu.Unlock()
	}
	return removed, q.copyForward()
}

// writeDone writes m's done record, which drops it from the index. When
// that fails, m waits for the collector to try again (retryDone): its
// recipients are final, so it is never delivered again meanwhile.
func (q *Queue) writeDone(m *msg) error {
	q.mu.Lock()
	if q.msgs[m.id] != m || q.closed {
		q.mu.Unlock()
		return nil
	}
	// A done record lost in a crash of the machine means the message is
	// reported finished again at the next start: its fdatasync is shared
	// with the next commit (submitLazy).
	req := q.submitLazyFor(m, true, encodeSimple(recDone, m.id, doneFinished))
	q.mu.Unlock()
	if _, err := q.applyCommitted(m, req); err != nil {
		q.mu.Lock()
		q.c.undone = append(q.c.undone, m)
		if q.c.undoneAt.IsZero() {
			q.c.undoneAt = time.Now().Add(q.c.doneEp.Fail(err, "messages", len(q.c.undone)))
		}
		q.mu.Unlock()
		return err
	}
	q.log.Info("removed", "id", m.id)
	return nil
}

// retryDone writes the done records that failed before, once their
// backoff delay has passed, oldest first, and stops at the first failure.
func (q *Queue) retryDone() {
	q.mu.Lock()
	if len(q.c.undone) == 0 || time.Now().Before(q.c.undoneAt) {
		q.mu.Unlock()
		return
	}
	ms := q.c.undone
	q.c.undone, q.c.undoneAt = nil, time.Time{}
	q.mu.Unlock()
	for i, m := range ms {
		q.mu.Lock()
		if q.msgs[m.id] != m || q.closed {
			q.mu.Unlock()
			continue
		}
		req := q.submitFor(m, encodeSimple(recDone, m.id, doneFinished))
		q.mu.Unlock()
		if _, err := q.applyCommitted(m, req); err != nil {
			q.mu.Lock()
			q.c.undone = append(ms[i:], q.c.undone...)
			q.c.undoneAt = time.Now().Add(q.c.doneEp.Fail(err, "messages", len(q.c.undone)))
			q.mu.Unlock()
			return
		}
		q.log.Info("removed", "id", m.id)
	}
	q.c.doneEp.OK("messages", len(ms))
}

// copyJob is one message being copied forward.
type copyJob struct {
	m     *msg
	base  loc
	nhist int
	recs  [][]byte
	req   *request
}

// copyForward rewrites up to CopyForwardBatch messages that still have
// records in the oldest segment into the active one: their message record
// and every state, hold, retry and reported record, byte for byte. Recovery treats a
// later message record for the same ID as superseding the earlier one.
func (q *Queue) copyForward() int {
	q.mu.Lock()
	s := q.segs[0]
	lag := len(q.segs) - 1
	if s == q.active || lag < q.cfg.CopyForwardLag || s.live*2 > max(s.end, 1) {
		q.mu.Unlock()
		return 0
	}
	var jobs []*copyJob
	for _, m := range q.msgs {
		if len(jobs) >= q.cfg.CopyForwardBatch {
			break
		}
		if m.finishing || m.pending > 0 {
			continue
		}
		for _, x := range m.segs {
			if x == s {
				jobs = append(jobs, &copyJob{m: m, base: m.base, nhist: len(m.hist)})
				break
			}
		}
	}
	// Read the records without the lock; segments cannot go while
	// these messages keep references to them.
	hists := make([][]loc, len(jobs))
	var pinned []*segment
	for i, j := range jobs {
		hists[i] = append([]loc(nil), j.m.hist...)
		pinned = append(pinned, j.m.segs...)
	}
	for _, s := range pinned {
		s.readers++
	}
	recLens := make([]int, len(jobs))
	for i, j := range jobs {
		recLens[i] = int(j.m.recLen)
	}
	q.mu.Unlock()
	for i, j := range jobs {
		b, err := readRecord(j.base, recLens[i])
		if err != nil {
			q.log.Error("queue: cannot copy message forward", "id", j.m.id, "err", err)
			continue
		}
		j.recs = append(j.recs, b)
		for _, l := range hists[i] {
			h, err := readRecordAt(l)
			if err != nil {
				q.log.Error("queue: cannot copy message forward", "id", j.m.id, "err", err)
				j.recs = nil
				break
			}
			j.recs = append(j.recs, h)
		}
	}
	q.mu.Lock()
	for _, s := range pinned {
		s.readers--
	}
	for _, j := range jobs {
		m := j.m
		if j.recs == nil || q.msgs[m.id] != m || m.finishing || m.pending > 0 || m.base != j.base || len(m.hist) != j.nhist {
			continue
		}
		j.req = q.submitFor(m, j.recs...)
	}
	q.mu.Unlock()
	n := 0
	for _, j := range jobs {
		if j.req == nil {
			continue
		}
		<-j.req.done
		q.mu.Lock()
		m := j.m
		m.pending--
		if j.req.err == nil && q.msgs[m.id] == m {
			q.dropRefs(m)
			m.base = loc{j.req.seg, j.req.offs[0]}
			for k := 0; k < j.nhist; k++ {
				m.hist[k] = loc{j.req.seg, j.req.offs[k+1]}
			}
			q.addRef(m, m.base.seg)
			m.base.seg.live += int64(m.recLen)
			for _, l := range m.hist {
				q.addRef(m, l.seg)
			}
			n++
			q.stats.CopiedForward++
		}
		q.mu.Unlock()
	}
	if n > 0 {
		q.log.Info("queue: messages copied forward", "segment", s.path, "messages", n)
	}
	return n
}

// Stats are counters and sizes for metrics.
type Stats struct {
	// Messages is the number of queued messages.
	Messages int
	// Segments is the number of segment files.
	Segments int
	// SegmentsRemoved and CopiedForward count collection work since Open.
	SegmentsRemoved int
	CopiedForward   int
	// Leases is the number of leases out.
	Leases int
	// WriteErrors counts failed writes, fdatasyncs and segment creations
	// since Open; Refused counts messages refused for the reserve.
	WriteErrors int
	Refused     int
}

// Stats returns the queue's current counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.stats
	s.Messages = len(q.msgs)
	s.Segments = len(q.segs)
	s.Leases = len(q.leases)
	s.WriteErrors = int(q.c.writeErrors.Load())
	s.Refused = int(q.c.refused.Load())
	return s
}

// recycle keeps a finished segment s, which no live message has records
// in, as the next spare but one (poolName), unless one is kept already:
// the next segment is then made by renaming it instead of zero-filling a
// new file. It is marked free first, with the highest generation given
// out, so that every record in it is older than the segments made from it
// (docs/queue-format.md). It reports whether s was kept; if not, the
// caller removes it.
func (q *Queue) recycle(s *segment) bool {
	if s.damaged || s.size != q.cfg.SegmentSize || !q.c.poolTaken.CompareAndSwap(false, true) {
		return false
	}
	bound := q.gen.Load()
	err := writeSegHeader(s.f, segHeader{kind: kindFree, base: bound, gen: bound})
	if err == nil {
		err = q.fs.Rename(s.path, filepath.Join(q.cfg.Dir, poolName))
	}
	if err != nil {
		q.c.poolTaken.Store(false)
		q.log.Warn("queue: cannot keep a finished segment for reuse", "segment", s.path, "err", err)
		return false
	}
	q.log.Debug("queue: segment kept for reuse", "segment", s.path)
	q.c.pooled <- s.f
	return true
}
