package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// corruptDir is the spool subdirectory where recovery keeps damaged
// segments (docs/queue-format.md).
const corruptDir = "corrupt"

// maxNamedIDs bounds how many queue IDs one log line names.
const maxNamedIDs = 32

// segDamage is what recovery found wrong in one segment.
type segDamage struct {
	ranges  int      // damaged ranges skipped before a valid record
	bad     int      // checked records that could not be applied
	tail    bool     // non-zero octets after the last valid record
	tailOff int64    // where that tail starts
	tailLen int64    // up to its last non-zero octet
	tailIDs []string // queue IDs named in the tail
}

// resync scans forward from off, where no valid record starts, for the
// next offset after off where one does. It returns that offset (or -1 when
// none follows) and, when none follows, the offset of the last non-zero
// octet from off on (-1 when all of it is zero: preallocated space). A
// record starts with a type octet 1 to recMax, so only those positions are
// checked in full.
func (w *window) resync(s *segment, off int64, cur uint64) (next, lastNonZero int64, err error) {
	lastNonZero = -1
	const chunk = 1 << 20
	zeros := make([]byte, chunk) // runs of zeros (preallocated space) are passed by comparison
	for p := off; p < w.size; {
		n := int(min(chunk, w.size-p))
		b, _, err := w.get(p, n)
		if err != nil {
			return -1, -1, err
		}
		if bytes.Equal(b, zeros[:n]) {
			p += int64(n)
			continue
		}
		i := 0
		for ; i < len(b); i++ {
			c := b[i]
			if c == 0 {
				continue
			}
			lastNonZero = p + int64(i)
			if c <= byte(recMax) && p+int64(i) > off && p+int64(i)+headerSize <= w.size {
				break
			}
		}
		if i == len(b) {
			p += int64(n)
			continue
		}
		p += int64(i)
		_, _, ok, err := w.validAt(s, p, cur) // may move the window: b is not used again
		if err != nil {
			return -1, -1, err
		}
		if ok {
			return p, -1, nil
		}
		p++
	}
	return -1, lastNonZero, nil
}

// namedIDs returns the queue IDs that record headers in [from, to) still
// name: a header whose three reserved octets are zero (its type, length
// or CRC may be damaged, or all of it zeroed) followed by an ID length and
// that many ID characters.
func (w *window) namedIDs(from, to int64) ([]string, error) {
	seen := make(map[string]bool)
	var ids []string
	for p := from; p < to && len(ids) < maxNamedIDs; p++ {
		h, ok, err := w.get(p, headerSize+1)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		l := int(h[headerSize])
		if l == 0 || l > maxIDLen {
			continue
		}
		b, ok, err := w.get(p+headerSize+1, l)
		if err != nil {
			return nil, err
		}
		if !ok || !isQueueID(b) || seen[string(b)] {
			continue
		}
		seen[string(b)] = true
		ids = append(ids, string(b))
	}
	return ids, nil
}

// isQueueID reports whether b consists of queue ID characters only.
func isQueueID(b []byte) bool {
	for _, c := range b {
		if !strings.ContainsRune(idAlphabet, rune(c)) {
			return false
		}
	}
	return len(b) > 0
}

// settleDamage acts on what scanSegment found in s. A torn tail of the
// newest segment, with nothing else wrong, is cut off: it is most likely
// the write a crash interrupted, never acknowledged; its octets are kept in
// spool/corrupt/ all the same. Anything else may have held
// acknowledged mail, so the segment is kept in spool/corrupt/ as it is
// (a hard link, or a copy where links fail) before the queue goes on, and
// is not changed; the spool's own name for it goes when its recovered
// messages are done, the copy stays for the operator.
func (q *Queue) settleDamage(s *segment, newest bool, d segDamage, st *recoveryStats) error {
	if d.ranges == 0 && d.bad == 0 && (!d.tail || newest) {
		if !d.tail {
			return nil
		}
		// Damage at the very end cannot be told from a torn write: the
		// octets cut off are kept too.
		kept, err := saveTail(q.cfg.Dir, s, d.tailOff, d.tailLen)
		if err != nil {
			return fmt.Errorf("queue: keep the tail of %s: %w", s.path, err)
		}
		return q.cutTail(s, d.tailOff, d.tailLen, d.tailIDs, kept, st)
	}
	kept, err := preserveSegment(q.cfg.Dir, s)
	if err != nil {
		return fmt.Errorf("queue: keep damaged segment %s: %w", s.path, err)
	}
	s.damaged = true // never trimmed or appended to (startSegment)
	st.damaged++
	if d.tail {
		q.log.Warn("queue: damaged tail left in place", "segment", s.path, "offset", d.tailOff,
			"octets", d.tailLen, "ids", d.tailIDs)
	}
	q.log.Error("queue: damaged segment kept", "segment", s.path, "copy", kept,
		"damaged_ranges", d.ranges, "bad_records", d.bad, "damaged_tail", d.tail)
	return nil
}

// preserveSegment makes spool/corrupt/<segment name> the same file as s
// (or a copy of it) and returns its path. A name already there for the
// same file is kept; one for another file (a segment number used again
// after the spool emptied) gets a time suffix.
func preserveSegment(spool string, s *segment) (string, error) {
	dir := filepath.Join(spool, corruptDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, filepath.Base(s.path))
	if have, err := os.Stat(dst); err == nil {
		if src, err := os.Stat(s.path); err == nil && os.SameFile(have, src) {
			return dst, nil
		}
		dst += "." + time.Now().UTC().Format("20060102T150405.000000000")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.Link(s.path, dst); err != nil {
		if err := copySegment(s, dst); err != nil {
			return "", err
		}
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	return dst, nil
}

// saveTail writes the n octets of s from off to
// spool/corrupt/<segment name>.tail-<off> and returns its path; one that is
// there already is kept.
func saveTail(spool string, s *segment, off, n int64) (string, error) {
	dir := filepath.Join(spool, corruptDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, fmt.Sprintf("%s.tail-%d", filepath.Base(s.path), off))
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return dst, nil
	}
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, io.NewSectionReader(s.f, off, n))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(dst)
		return "", fmt.Errorf("save tail to %s: %w", dst, err)
	}
	return dst, nil
}

// copySegment copies all of s to a new file dst and syncs it.
func copySegment(s *segment, dst string) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(s.f, 0, s.size))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return nil
}

// reportOrphans logs the messages that records name but recovery did not
// find: a message that is not done always has its message record in the
// spool, so these were lost to damage.
func (q *Queue) reportOrphans(orphans map[string]struct{}) {
	var ids []string
	for id := range orphans {
		if q.msgs[id] == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	sort.Strings(ids)
	q.log.Error("queue: messages lost to damage: later records name them", "count", len(ids),
		"ids", ids[:min(len(ids), maxNamedIDs)])
}

// cutTail truncates a segment at off, where a torn tail starts; kept is
// where its octets were saved.
func (q *Queue) cutTail(s *segment, off, n int64, ids []string, kept string, st *recoveryStats) error {
	st.tails++
	q.log.Warn("queue: torn or corrupt tail cut off", "segment", s.path, "offset", off,
		"octets", s.size-off, "ids", ids, "copy", kept)
	if s.base != 0 {
		// Format 2: the tail is overwritten with zeros and the file
		// keeps its size, to be written on or reused.
		if err := zeroFileRange(s.f, off, off+n); err != nil {
			return fmt.Errorf("queue: cut tail of %s at %d: %w", s.path, off, err)
		}
		return nil
	}
	if err := s.f.Truncate(off); err != nil {
		return fmt.Errorf("queue: cut tail of %s at %d: %w", s.path, off, err)
	}
	if err := s.f.Datasync(); err != nil {
		return fmt.Errorf("queue: cut tail of %s at %d: %w", s.path, off, err)
	}
	s.size = off
	return nil
}

// zeroFileRange overwrites [from, to) of f with zeros and syncs it.
func zeroFileRange(f segFile, from, to int64) error {
	zero := make([]byte, min(to-from, 1<<20))
	for off := from; off < to; off += int64(len(zero)) {
		n := min(int64(len(zero)), to-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return err
		}
	}
	return f.Datasync()
}
