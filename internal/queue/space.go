package queue

import (
	"fmt"
	"syscall"
)

// envelopeAllowance is what HasRoomFor adds to a declared message size for
// the record header, the envelope and the Received field.
const envelopeAllowance = 64 << 10

// HasRoomFor reports whether a message of about size octets (the SIZE= a
// client declares, RFC 1870) can be stored now, cheaply enough to ask at
// every MAIL command: it fits in the active segment's free space, or the
// file system holding the spool has room for the next segment (or for the
// message, when it is larger than a segment). It errs on the side of
// storing: when the free space cannot be read it reports true and Put
// finds out. It may report false while a spare segment, already
// allocated, could still take the message; the client retries later.
func (q *Queue) HasRoomFor(size int64) bool {
	need := size + envelopeAllowance
	q.mu.Lock()
	left := int64(0)
	if q.active != nil {
		left = q.active.size - q.active.end
	}
	q.mu.Unlock()
	if need <= left {
		return true
	}
	free := q.freeSpace
	if free == nil {
		free = statfsFree
	}
	avail, err := free(q.cfg.Dir)
	if err != nil {
		return true
	}
	return avail >= max(need, q.cfg.SegmentSize)
}

// statfsFree returns the octets of dir's file system available to
// unprivileged users (statfs(2) f_bavail), which a spool should not count
// on exceeding.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
