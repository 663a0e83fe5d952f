package queue

import (
	"errors"
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
		free, err := q.readHeader(s, &st)
		if err != nil {
			f.Close()
			return nil, err
		}
		if free {
			// Marked free while it was being kept for reuse: it holds
			// no records.
			q.removeEmpty(s)
			continue
		}
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

// validAt reports whether a whole record of segment s with a correct CRC
// starts at off, after a record of generation cur, and returns it and its
// generation.
func (w *window) validAt(s *segment, off int64, cur uint64) ([]byte, uint64, bool, error) {
	h, ok, err := w.get(off, headerSize)
	if !ok || err != nil {
		return nil, 0, false, err
	}
	_, n, ok := parseHeader(h)
	if !ok {
		return nil, 0, false, nil
	}
	if g := s.recordGen(h); s.base == 0 && (h[1] != 0 || h[2] != 0 || h[3] != 0) || s.base != 0 && (g < cur || g > s.gen) {
		return nil, 0, false, nil // checked before the record is read: stale records of a reused segment are passed quickly
	}
	rec, ok, err := w.get(off, headerSize+n)
	if !ok || err != nil {
		return nil, 0, false, err
	}
	g, ok := s.recordValid(rec, cur)
	return rec, g, ok, nil
}

// readHeader reads the header of a segment found by recovery and sets its
// generations. It reports a file marked free (no records). A format 2
// segment whose header is damaged cannot be read: it is kept in
// spool/corrupt/ as damage is, and its messages are reported lost.
func (q *Queue) readHeader(s *segment, st *recoveryStats) (free bool, err error) {
	h, slot, v2, err := readSegHeader(s.f, s.size)
	if errors.Is(err, errBadHeader) {
		kept, err := preserveSegment(q.cfg.Dir, s)
		if err != nil {
			return false, fmt.Errorf("queue: keep damaged segment %s: %w", s.path, err)
		}
		s.damaged, s.end = true, s.size
		st.damaged++
		q.log.Error("queue: damaged segment kept: its header cannot be read, so neither can its records", "segment", s.path, "copy", kept)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue: %s: %w", s.path, err)
	}
	if !v2 {
		return false, nil
	}
	q.noteGen(h.gen)
	if h.kind == kindFree {
		return true, nil
	}
	s.base, s.gen, s.kind, s.slot = h.base, h.gen, h.kind, slot
	return false, nil
}

// noteGen raises the highest generation given out to at least g.
func (q *Queue) noteGen(g uint64) {
	for {
		cur := q.gen.Load()
		if g <= cur || q.gen.CompareAndSwap(cur, g) {
			return
		}
	}
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
	if s.damaged { // its header is damaged (readHeader)
		return nil
	}
	w := &window{f: s.f, size: s.size}
	var dmg segDamage
	bad := st.bad
	off, cur := s.start(), s.base
	for off < s.size {
		rec, g, ok, err := w.validAt(s, off, cur)
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		if ok {
			q.applyRecord(s, off, rec, st)
			off += int64(len(rec))
			cur = g
			continue
		}
		next, nz, err := w.resync(s, off, cur)
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
		if s.kind == kindReused {
			// Records of earlier generations follow: a tail is a
			// header of this generation or a later one that does not
			// check, up to the end it names.
			nz = -1
			if h, ok, err := w.get(off, headerSize); err != nil {
				return fmt.Errorf("%s: %w", s.path, err)
			} else if _, n, hok := parseHeader(h); ok && hok {
				if g := s.recordGen(h); g >= cur && g <= s.gen {
					nz = min(off+int64(headerSize+n), s.size) - 1
				}
			}
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

// applyChange applies a state, hold, unhold, retry, reported or done record to m in
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
	case recReported:
		if len(r.rest) == 0 {
			return fmt.Errorf("%w: report record without a tag", errCorrupt)
		}
		if m.claims == nil {
			m.claims = make(map[string]bool)
		}
		m.claims[string(r.rest)] = true
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
