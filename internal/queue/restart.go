package queue

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
)

// startSegment returns the segment new records go to after recovery and
// tidies what earlier runs left, so that restarts (a stop, a crash, a
// SIGKILL) do not grow the spool by a preallocated segment each time:
//   - a recovered segment that holds no record is removed;
//   - the last recovered segment, when of format 2, becomes the active
//     one again with a new generation (its records so far keep theirs,
//     whatever a crash left after them is older than what comes next);
//   - the preallocated tail after the records of every format 1 segment
//     is cut off, since nothing is written there again.
//
// A damaged segment (kept in spool/corrupt/ by recovery, the same file) is
// left exactly as it is.
//
// Only when the last segment cannot be reused is a new one created.
// Callers are Open, before the committer starts.
func (q *Queue) startSegment() (*segment, error) {
	kept := q.segs[:0]
	for i, s := range q.segs {
		if s.empty() && s.refs == 0 && s.live == 0 && !s.damaged && i < len(q.segs)-1 {
			q.removeEmpty(s)
			continue
		}
		kept = append(kept, s)
	}
	clear(q.segs[len(kept):])
	q.segs = kept
	var last *segment
	if n := len(q.segs); n > 0 {
		last = q.segs[n-1]
		if q.reuseInPlace(last) {
			q.trimTails(q.segs[:n-1])
			q.log.Info("queue: reusing segment", "segment", last.path, "offset", last.end, "room", last.size-last.end)
			return last, nil
		}
		if last.empty() && !last.damaged {
			q.removeEmpty(last)
			q.segs = q.segs[:n-1]
		}
	}
	q.trimTails(q.segs)
	no := uint64(1)
	if last != nil {
		no = last.no + 1
	}
	path := filepath.Join(q.cfg.Dir, segName(no))
	gen := q.gen.Add(1)
	f, err := createSegment(q.fs, path, q.cfg.SegmentSize, gen)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	s := &segment{no: no, path: path, f: f, size: q.cfg.SegmentSize, base: gen, gen: gen, kind: kindFresh, end: segHeaderSize}
	q.segs = append(q.segs, s)
	return s, nil
}

// reuseInPlace makes s, the last segment, the one written again: a format
// 2 segment with room left gets a new generation in the header slot that
// does not hold its current one (a torn write of it leaves the other).
// What the last run may have left after the records (a write it did not
// finish) is then older than anything written next, so recovery never
// takes it for new records. A fresh segment with anything but zeros after
// its records becomes a reused one, whose tail rules allow that.
func (q *Queue) reuseInPlace(s *segment) bool {
	if s.damaged || s.base == 0 || s.size <= s.end {
		return false
	}
	gen := q.gen.Load() + 1
	if gen-s.base >= genSpan {
		return false // the generation field would wrap: a new segment
	}
	kind := s.kind
	if kind == kindFresh && !q.zeroAfterEnd(s) {
		kind = kindReused
	}
	slot := 1 - s.slot
	if err := writeSlot(s.f, slot, segHeader{kind: kind, base: s.base, gen: gen}); err != nil {
		q.log.Warn("queue: cannot reuse segment", "segment", s.path, "err", err)
		return false
	}
	q.gen.Store(gen)
	s.gen, s.kind, s.slot = gen, kind, slot
	return true
}

// removeEmpty removes a segment file that holds no record.
func (q *Queue) removeEmpty(s *segment) {
	s.f.Close()
	if err := q.fs.Remove(s.path); err != nil {
		q.log.Warn("queue: cannot remove empty segment", "segment", s.path, "err", err)
		return
	}
	q.log.Info("queue: empty segment removed", "segment", s.path)
}

// zeroAfterEnd reports whether every octet of s after its last record is
// zero, so that appending there cannot leave a stale, never-committed
// record behind the new ones for a later recovery to find.
func (q *Queue) zeroAfterEnd(s *segment) bool {
	buf, zero := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := s.end; off < s.size; {
		n := int(min(int64(len(buf)), s.size-off))
		k, err := s.f.ReadAt(buf[:n], off)
		if err != nil && !(err == io.EOF && k == n) {
			q.log.Warn("queue: cannot read segment tail", "segment", s.path, "err", err)
			return false
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			return false
		}
		off += int64(n)
	}
	return true
}

// trimTails cuts the unused preallocated space off segments that are no
// longer written. A failure only costs disk space, so it is logged.
func (q *Queue) trimTails(segs []*segment) {
	for _, s := range segs {
		if s.size <= s.end || s.damaged || s.base != 0 { // format 2 keeps its size for reuse
			continue
		}
		if err := s.f.Truncate(s.end); err != nil {
			q.log.Warn("queue: cannot trim segment", "segment", s.path, "err", err)
			continue
		}
		if err := s.f.Datasync(); err != nil {
			q.log.Warn("queue: cannot trim segment", "segment", s.path, "err", err)
			continue
		}
		s.size = s.end
	}
}

// spares are the files a previous run left prepared for the next
// segments: the spare and the finished segment kept for reuse.
type spares struct {
	ready, pool segFile
	// readyReused says the spare was a segment before.
	readyReused bool
}

// keepSpares opens the spare and the pooled segment an earlier run left,
// when they are marked free and of the segment size, so that a restart
// need not zero-fill a new one; others are removed. Callers are Open,
// before startSegment: the generations the files name are counted.
func (q *Queue) keepSpares() spares {
	var sp spares
	for _, name := range []string{spareName, poolName} {
		path := filepath.Join(q.cfg.Dir, name)
		f, err := q.fs.Open(path)
		if err != nil {
			continue
		}
		size, err := f.Size()
		var h segHeader
		v2 := false
		if err == nil {
			h, _, v2, err = readSegHeader(f, size)
		}
		if err != nil || !v2 || size != q.cfg.SegmentSize {
			f.Close()
			q.fs.Remove(path)
			continue
		}
		q.noteGen(h.gen)
		if name == spareName {
			sp.ready, sp.readyReused = f, h.gen != 0
		} else {
			sp.pool = f
		}
	}
	return sp
}
