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
//   - the last recovered segment becomes the active one again when the
//     rest of its preallocated space is still all zero (it is where the
//     last run was writing);
//   - the preallocated tail after the records of every other segment is
//     cut off, since nothing is written there again.
//
// A damaged segment (kept in spool/corrupt/ by recovery, the same file) is
// left exactly as it is.
//
// Only when the last segment cannot be reused is a new one created.
// Callers are Open, before the committer starts.
func (q *Queue) startSegment() (*segment, error) {
	kept := q.segs[:0]
	for i, s := range q.segs {
		if s.end == 0 && s.refs == 0 && s.live == 0 && !s.damaged && i < len(q.segs)-1 {
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
		if !last.damaged && last.size > last.end && q.zeroAfterEnd(last) {
			q.trimTails(q.segs[:n-1])
			q.log.Info("queue: reusing segment", "segment", last.path, "offset", last.end, "room", last.size-last.end)
			return last, nil
		}
		if last.end == 0 && !last.damaged {
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
	f, err := q.fs.Create(path, q.cfg.SegmentSize)
	if err != nil {
		return nil, fmt.Errorf("queue: create segment %s: %w", path, err)
	}
	s := &segment{no: no, path: path, f: f, size: q.cfg.SegmentSize}
	q.segs = append(q.segs, s)
	return s, nil
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
		if s.size <= s.end || s.damaged {
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
