package queue

import (
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// recoveryStats counts what recovery found.
type recoveryStats struct {
	segments, records, messages, skipped, tails int
	// bad counts checked records that could not be applied.
	bad int
	// damaged segments, preserved in spool/corrupt/.
	damaged int
	// orphans holds the IDs of messages that later records name but whose
	// message record was not found (and no done record followed).
	orphans map[string]struct{}
}

// recover scans every segment in order and rebuilds the index. It returns
// the messages whose recipients are all final but that have no done record
// (the process stopped while finishing them).
func (q *Queue) recover() ([]*msg, error) {
	start := time.Now()
	nos, err := listSegments(q.cfg.Dir)
	if err != nil {
		return nil, err
	}
	st := recoveryStats{orphans: make(map[string]struct{})}
	for i, no := range nos {
		path := filepath.Join(q.cfg.Dir, segName(no))
		f, err := q.fs.Open(path)
		if err != nil {
			return nil, fmt.Errorf("queue: open segment: %w", err)
		}
		size, err := f.Size()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("queue: stat segment %s: %w", path, err)
		}
		s := &segment{no: no, path: path, f: f, size: size}
		q.segs = append(q.segs, s)
		if err := q.scanSegment(s, i == len(nos)-1, &st); err != nil {
			return nil, err
		}
		st.segments++
	}
	q.reportOrphans(st.orphans)
	var unfinished []*msg
	for _, m := range q.msgs {
		if m.allFinal() {
			m.finishing = true
			unfinished = append(unfinished, m)
			continue
		}
		for _, g := range m.groups {
			q.schedule(g)
		}
	}
	q.log.Info("queue recovered", "dir", q.cfg.Dir, "segments", st.segments, "records", st.records,
		"messages", len(q.msgs), "skipped_records", st.skipped, "tails_cut", st.tails, "damaged_segments", st.damaged,
		"unfinished", len(unfinished), "elapsed", time.Since(start))
	return unfinished, nil
}

// window gives access to a segment's bytes through a large read buffer.
type window struct {
	f     segFile
	size  int64
	start int64
	buf   []byte
}

// get returns the n octets at off, or ok=false when they pass the end.
func (w *window) get(off int64, n int) ([]byte, bool, error) {
	if off < 0 || off+int64(n) > w.size {
		return nil, false, nil
	}
	if off >= w.start && off+int64(n) <= w.start+int64(len(w.buf)) {
		return w.buf[off-w.start : off-w.start+int64(n)], true, nil
	}
	want := int64(max(n, 4<<20))
	if off+want > w.size {
		want = w.size - off
	}
	if int64(cap(w.buf)) < want {
		w.buf = make([]byte, want)
	}
	w.buf = w.buf[:want]
	k, err := w.f.ReadAt(w.buf, off)
	if err != nil && !(err == io.EOF && int64(k) == want) {
		return nil, false, fmt.Errorf("queue: read segment at %d: %w", off, err)
	}
	w.start = off
	return w.buf[:n], true, nil
}

// validAt reports whether a whole record with a correct CRC starts at off,
// and returns it.
func (w *window) validAt(off int64) ([]byte, bool, error) {
	h, ok, err := w.get(off, headerSize)
	if !ok || err != nil {
		return nil, false, err
	}
	_, n, ok := parseHeader(h)
	if !ok {
		return nil, false, nil
	}
	rec, ok, err := w.get(off, headerSize+n)
	if !ok || err != nil {
		return nil, false, err
	}
	return rec, checkCRC(rec), nil
}

// scanSegment applies every valid record of s. Where no valid record
// starts, recovery looks for the next one (resync): the octets in between
// are a damaged range, logged with the queue IDs found in it. When nothing
// valid follows, the rest is either zeros (preallocated space: the end of
// the records) or a tail that is not a whole record. A torn tail of the
// newest segment is what a crash during a write leaves; it is cut off.
// Any other damage means records may be lost that were acknowledged, so
// the segment is preserved in spool/corrupt/ and left as it is.
func (q *Queue) scanSegment(s *segment, newest bool, st *recoveryStats) error {
	w := &window{f: s.f, size: s.size}
	var dmg segDamage
	bad := st.bad
	off := int64(0)
	for off < s.size {
		rec, ok, err := w.validAt(off)
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		if ok {
			q.applyRecord(s, off, rec, st)
			off += int64(len(rec))
			continue
		}
		next, nz, err := w.resync(off)
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		if next >= 0 {
			ids, err := w.namedIDs(off, next)
			if err != nil {
				return fmt.Errorf("%s: %w", s.path, err)
			}
			st.skipped++
			dmg.ranges++
			q.log.Warn("queue: corrupt record skipped", "segment", s.path, "offset", off,
				"resync_offset", next, "octets", next-off, "ids", ids)
			off = next
			continue
		}
		if nz >= 0 {
			dmg.tail, dmg.tailOff, dmg.tailLen = true, off, nz+1-off
			ids, err := w.namedIDs(off, nz+1)
			if err != nil {
				return fmt.Errorf("%s: %w", s.path, err)
			}
			dmg.tailIDs = ids
		}
		break
	}
	s.end = off
	dmg.bad = st.bad - bad
	return q.settleDamage(s, newest, dmg, st)
}

// applyRecord applies one checked record found during recovery.
func (q *Queue) applyRecord(s *segment, off int64, rec []byte, st *recoveryStats) {
	st.records++
	r, err := decodeRecord(rec)
	if err != nil {
		st.skipped++
		st.bad++
		q.log.Warn("queue: undecodable record skipped", "segment", s.path, "offset", off, "err", err)
		return
	}
	l := loc{s, off}
	if r.typ == recMessage {
		e, bodyOff, err := splitMessage(r.rest)
		if err == nil {
			envl, derr := decodeEnvelope(r.id, e)
			if derr == nil {
				if old := q.msgs[r.id]; old != nil {
					q.unindex(old) // an earlier copy: this record supersedes it
				}
				st.messages++
				delete(st.orphans, r.id)
				m := q.newMsg(envl, l, len(rec), headerSize+1+len(r.id)+bodyOff)
				q.msgs[m.id] = m
				return
			}
			err = derr
		}
		st.skipped++
		st.bad++
		q.log.Warn("queue: undecodable message record skipped", "segment", s.path, "offset", off, "err", err)
		return
	}
	m := q.msgs[r.id]
	if m == nil {
		// The message's record was collected (it is done), or it was lost
		// in a damaged range: a done record settles which.
		if r.typ == recDone {
			delete(st.orphans, r.id)
		} else {
			st.orphans[r.id] = struct{}{}
		}
		return
	}
	if err := q.applyChange(m, r, l); err != nil {
		st.skipped++
		st.bad++
		q.log.Warn("queue: bad record skipped", "segment", s.path, "offset", off, "id", r.id, "err", err)
	}
}

// applyChange applies a state, hold, unhold, retry or done record to m in
// memory. Recovery and live operations share it. Callers hold q.mu.
func (q *Queue) applyChange(m *msg, r record, l loc) error {
	switch r.typ {
	case recState:
		s, err := decodeState(r.rest)
		if err != nil {
			return err
		}
		if s.Rcpt >= len(m.rcpts) {
			return fmt.Errorf("%w: recipient %d of %d", errCorrupt, s.Rcpt, len(m.rcpts))
		}
		rc := &m.rcpts[s.Rcpt]
		rc.state = s.State
		rc.attempts = uint16(min(s.Attempts, 1<<16-1))
		if s.State == Deferred || s.State == Pending {
			rc.next = timeNano(s.Next)
		}
	case recHold:
		m.held = true
	case recUnhold:
		m.held = false
	case recRetry:
		for i := range m.rcpts {
			if !m.rcpts[i].final() {
				m.rcpts[i].next = 0
			}
		}
	case recDone:
		q.unindex(m)
		return nil
	default:
		return fmt.Errorf("%w: unexpected record type %d", errCorrupt, r.typ)
	}
	m.hist = append(m.hist, l)
	q.addRef(m, l.seg)
	return nil
}
