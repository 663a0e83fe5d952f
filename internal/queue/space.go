package queue

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/maillog"
)

// ErrSpoolFull is returned by Put when storing the message would leave
// less than Config.Reserve of preallocated segment space, which is kept
// for delivery records. It wraps syscall.ENOSPC, so the server answers
// 452 4.3.1 (RFC 3463 X.3.1 "mail system full").
var ErrSpoolFull = fmt.Errorf("queue: spool full, the space left is kept for delivery records: %w", syscall.ENOSPC)

// health is the spool's write health as the committer sees it. Each
// episode logs once when it starts, at most once a minute while it lasts
// and once when it ends (maillog.Episode).
type health struct {
	// writeEp is a spool whose writes fail: a failed write or fdatasync
	// of the active segment, until a write succeeds again.
	writeEp *maillog.Episode
	// createEp is a spool where no segment file can be created (full,
	// read-only): a failed rotation or spare, until a segment file is
	// created again. Small records may still fit in the active segment
	// meanwhile, so they do not end it.
	createEp *maillog.Episode
	// fullEp is new mail refused for the reserve, until half a segment
	// is free again or a next segment is prepared.
	fullEp *maillog.Episode
	// doneEp is done records that wait to be written again (see
	// Queue.retryDone).
	doneEp *maillog.Episode

	writeErrors atomic.Int64
	refused     atomic.Int64
	// spareReady mirrors whether a prepared next segment waits, for
	// HasRoomFor on other goroutines.
	spareReady atomic.Bool
}

func newHealth(l *slog.Logger) health {
	return health{
		writeEp: maillog.NewEpisode(l, slog.LevelError,
			"queue: spool not writable: records cannot be written; new mail is refused and deliveries wait",
			"queue: spool still not writable", "queue: spool writable again", nil),
		createEp: maillog.NewEpisode(l, slog.LevelError,
			"queue: spool not writable: no segment file can be created; new mail is refused and deliveries wait once the current segment is full",
			"queue: spool still not writable: no segment file can be created",
			"queue: spool writable again: a segment file was created", nil),
		fullEp: maillog.NewEpisode(l, slog.LevelWarn,
			"queue: spool full; new mail refused with 452 4.3.1, the space left is kept for delivery records",
			"queue: spool still full; new mail refused", "queue: spool has room again; new mail accepted", nil),
		doneEp: maillog.NewEpisode(l, slog.LevelWarn,
			"queue: done records of finished messages cannot be written; retrying with backoff",
			"queue: done records still waiting", "queue: done records written", nil),
	}
}

// failedWrite records a failed write or fdatasync.
func (h *health) failedWrite(err error) {
	h.writeErrors.Add(1)
	h.writeEp.Fail(err)
}

// failedCreate records a failed segment creation and returns the delay
// before the next try.
func (h *health) failedCreate(err error) time.Duration {
	h.writeErrors.Add(1)
	return h.createEp.Fail(err)
}

// written records a successful write: a write episode ends.
func (h *health) written() { h.writeEp.OK() }

// created records a segment file created: a creation episode ends.
func (h *health) created() { h.createEp.OK() }

// isMessage reports whether r carries a message record (a Put or a copy
// forward): such requests are refused rather than eat into the reserve.
func (r *request) isMessage() bool {
	return len(r.recs) > 0 && len(r.recs[0]) > 0 && recType(r.recs[0][0]) == recMessage
}

// submitMessage hands a message record to the committer; report marks a
// generated report, which may use half of the reserve (PutReport).
func (c *committer) submitMessage(rec []byte, report bool) *request {
	return c.enqueue(&request{recs: [][]byte{rec}, done: make(chan struct{}), report: report})
}

// admit refuses, with ErrSpoolFull, the message requests of batch that
// would leave less than the reserve in the active segment and the prepared
// spare (a generated report: less than half of it), and returns the
// others in order. Other records may use the reserve; when it is gone too
// they need a new segment file.
func (c *committer) admit(batch []*request) []*request {
	size, reserve := c.q.cfg.SegmentSize, c.q.cfg.Reserve
	rem := c.active.size - max(c.active.end, c.dirty)
	spare := c.ready != nil || c.preparing
	checked := spare
	kept := batch[:0]
	for _, r := range batch {
		n := r.size()
		if n > rem && !checked {
			// No spare: will a segment created now fit, leaving the
			// reserve free on the file system? Asked once per batch,
			// so that new mail resumes as soon as space returns.
			free, err := c.q.fs.Free(c.q.cfg.Dir)
			spare, checked = err != nil || free >= size+reserve, true
		}
		left, hasSpare := rem, spare
		if n > left && hasSpare && !(c.active.empty() && c.dirty == 0) {
			left, hasSpare = size, false
		}
		if r.isMessage() && n > size {
			// Larger than a segment: it gets an empty segment of its
			// own, grown past its preallocation, which the file system
			// must have room for.
			if fs, err := c.q.fs.Free(c.q.cfg.Dir); err == nil && fs < n-size+reserve {
				c.refuse(r, left)
				continue
			}
			rem, spare = 0, false
			kept = append(kept, r)
			continue
		}
		if r.isMessage() {
			free := left
			if hasSpare {
				free += size
			}
			if n > left || free-n < c.q.reportFloor(r) {
				c.refuse(r, free)
				continue
			}
			if free-n >= size/2 {
				// Room again, not just for this message: small
				// messages fitting while large ones are refused must
				// not make the episode start and end over and over.
				c.fullEp.OK()
			}
		}
		rem, spare = max(left-n, 0), hasSpare
		kept = append(kept, r)
	}
	return kept
}

// refuse ends r with ErrSpoolFull; free is the segment space left. A
// generated report refused is no client's 452: the DSN stage keeps the
// failed message for it (Event.Keep), and it is not counted here.
func (c *committer) refuse(r *request, free int64) {
	if !r.report {
		c.refused.Add(1)
		c.roomLater(c.fullEp.Fail(ErrSpoolFull, "reserve", c.q.cfg.Reserve, "free_in_segments", free))
	}
	r.err = ErrSpoolFull
	close(r.done)
}

// spaceFreed tells the committer that segments were removed, so that a
// next segment that did not fit is tried again at once.
func (c *committer) spaceFreed() {
	select {
	case c.freed <- struct{}{}:
	default:
	}
	c.q.reportSpace()
}

// roomLater arms the check for room after a refusal, after d (the
// episode's retry pace), unless one is armed.
func (c *committer) roomLater(d time.Duration) {
	if c.roomAt == nil {
		c.roomAt = time.NewTimer(d)
	}
}

// checkRoom ends the episode of refused mail when a message of ordinary
// size would be admitted now (as admit decides: the active segment and a
// prepared next one keep the reserve and half a segment free, or the file
// system has room for a new segment beyond the reserve), so that /readyz
// and the metrics say so without waiting for the next Put; else it looks
// again at the episode's pace.
func (c *committer) checkRoom() {
	if c.fullEp.Err() == nil {
		return
	}
	size, reserve := c.q.cfg.SegmentSize, c.q.cfg.Reserve
	free := c.active.size - max(c.active.end, c.dirty)
	if c.ready != nil {
		free += size
	}
	room := free >= reserve+size/2
	if !room && c.ready == nil {
		if fs, err := c.q.fs.Free(c.q.cfg.Dir); err == nil && fs >= size+reserve {
			room = true
			c.prepare()
		}
	}
	if room {
		c.fullEp.OK()
		return
	}
	c.roomLater(c.fullEp.Retry())
}

// Writable reports whether the spool takes new mail and records now: nil
// when it does, else why not (a failed write, or new mail refused for the
// reserve). It is meant for a readiness check.
func (q *Queue) Writable() error {
	if err := q.c.writeEp.Err(); err != nil {
		return fmt.Errorf("queue: spool not writable: %w", err)
	}
	if err := q.c.createEp.Err(); err != nil {
		return fmt.Errorf("queue: spool not writable: %w", err)
	}
	if err := q.c.fullEp.Err(); err != nil {
		return err
	}
	return nil
}

// envelopeAllowance is what HasRoomFor adds to a declared message size for
// the record header, the envelope and the Received field.
const envelopeAllowance = 64 << 10

// HasRoomFor reports whether a message of about size octets (the SIZE= a
// client declares, RFC 1870) can be stored now, cheaply enough to ask at
// every MAIL command: it fits in the free space of the active segment and
// the prepared next one without touching Config.Reserve (as Put requires),
// or the file system holding the spool has room for another segment (or
// for the message, when it is larger than a segment) beyond the reserve.
// It errs on the side of storing: when the free space cannot be read it
// reports true and Put finds out.
func (q *Queue) HasRoomFor(size int64) bool {
	need := size + envelopeAllowance
	q.mu.Lock()
	left := int64(0)
	if q.active != nil {
		left = q.active.size - q.active.end
	}
	q.mu.Unlock()
	if q.c.spareReady.Load() && need <= q.cfg.SegmentSize {
		left = max(left, q.cfg.SegmentSize)
	}
	if need <= left-q.cfg.Reserve {
		return true
	}
	free := q.freeSpace
	if free == nil {
		free = q.fs.Free
	}
	avail, err := free(q.cfg.Dir)
	if err != nil {
		return true
	}
	return avail >= max(need, q.cfg.SegmentSize)+q.cfg.Reserve
}

// statfsFree returns the octets of dir's file system available to
// unprivileged users (statfs(2) f_bavail × f_bsize), which a spool should
// not count on exceeding.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
