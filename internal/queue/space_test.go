package queue

import (
	"errors"
	"testing"
)

// TestHasRoomFor: a declared size that fits in the active segment needs no
// free space; one that needs a new segment needs the file system to have
// room for it; an unreadable free space leaves the decision to Put.
func TestHasRoomFor(t *testing.T) {
	cfg := testConfig(t.TempDir(), nil, nil)
	q := mustOpen(t, cfg)
	defer q.Close()
	var avail int64
	var statErr error
	q.freeSpace = func(string) (int64, error) { return avail, statErr }
	left := q.active.size - q.active.end
	if !q.HasRoomFor(left - envelopeAllowance - 1) {
		t.Error("a message that fits the active segment refused on a full disk")
	}
	if q.HasRoomFor(left) {
		t.Error("a message needing a new segment accepted on a full disk")
	}
	avail = 2 * cfg.SegmentSize
	if !q.HasRoomFor(left) {
		t.Error("a message needing a new segment refused with room for one")
	}
	if q.HasRoomFor(10 * cfg.SegmentSize) {
		t.Error("a message larger than the free space accepted")
	}
	avail, statErr = 0, errors.New("statfs failed")
	if !q.HasRoomFor(10 * cfg.SegmentSize) {
		t.Error("an unknown free space refused a message; Put should decide")
	}
	// The real file system: a message of a petabyte never fits.
	q.freeSpace = nil
	if q.HasRoomFor(1 << 50) {
		t.Error("a petabyte fits on this test machine's spool")
	}
}
