package queue

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// waitState polls cond (every 10 ms, at most 20 s) for a state change made
// by the queue's own goroutines.
func waitState(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReserveKeepsRecordsWritable fills a real 4 MiB tmpfs: new mail must be
// refused with ErrSpoolFull (ENOSPC) while the reserve is left, every
// accepted message must still get its outcome and done record, the
// refusal must be logged once, and once the finished messages' segment is
// removed new mail must be taken again, by itself.
func TestReserveKeepsRecordsWritable(t *testing.T) {
	var logs logBuffer
	q := nearlyFullQueue(t, &logs)
	defer func() { q.Close() }()

	put := func(i int) (string, error) {
		return q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(i, 16<<10)))
	}
	var ids []string
	var refused error
	for i := 0; i < 400; i++ {
		id, err := put(i)
		if err != nil {
			refused = err
			break
		}
		ids = append(ids, id)
	}
	if !errors.Is(refused, ErrSpoolFull) || !errors.Is(refused, syscall.ENOSPC) {
		t.Fatalf("after %d messages: err %v, want ErrSpoolFull wrapping ENOSPC", len(ids), refused)
	}
	// Small messages may still fit while large ones are refused; that
	// must not start and end the episode each time.
	refusals := 1
	for i := range 5 {
		if id, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(3000+i, 500))); err == nil {
			ids = append(ids, id)
		} else if errors.Is(err, ErrSpoolFull) {
			refusals++
		} else {
			t.Fatal(err)
		}
		if _, err := put(1000 + i); !errors.Is(err, ErrSpoolFull) {
			t.Fatalf("Put on a full spool: %v, want ErrSpoolFull", err)
		}
		refusals++
	}
	if q.Writable() == nil {
		t.Error("Writable() = nil while new mail is refused")
	}
	for _, id := range ids {
		if err := q.Update(context.Background(), nil, id, 0, Result{State: Sent, Reply: smtp.NewReply(250, "2.0.0", "ok"), RemoteMTA: "hop[127.0.0.1]:25"}); err != nil {
			t.Fatalf("recording the outcome of %s on a full spool: %v", id, err)
		}
	}
	st := q.Stats()
	if st.Messages != 0 || st.WriteErrors != 0 || st.Refused != refusals {
		t.Errorf("stats after every outcome: %+v, want 0 messages, 0 write errors, %d refused", st, refusals)
	}
	if removed, _ := q.gcStep(); removed == 0 {
		t.Fatal("no segment removed after every message finished")
	}
	waitState(t, "new mail to be taken again", func() bool { return q.Writable() == nil })
	if _, err := put(2000); err != nil {
		t.Fatalf("Put after space returned: %v", err)
	}
	log := logs.String()
	if c := strings.Count(log, "queue: spool full;"); c != 1 {
		t.Errorf("refusal logged %d times, want once:\n%s", c, log)
	}
	if c := strings.Count(log, "queue: spool has room again"); c != 1 {
		t.Errorf("end of refusal logged %d times, want once", c)
	}
	t.Logf("%d messages accepted in two 1 MiB segments; every outcome and done record written in the reserve", len(ids))
}

// TestRoomBackWithoutPut: when space returns outside the spool (another
// file removed) while new mail is refused, the queue says it is writable
// again by itself, without waiting for a Put that a load balancer steering
// by /readyz would never send.
func TestRoomBackWithoutPut(t *testing.T) {
	var logs logBuffer
	q := nearlyFullQueue(t, &logs)
	for i := 0; i < 400; i++ {
		_, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(i, 16<<10)))
		if errors.Is(err, ErrSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if q.Writable() == nil {
		t.Fatal("Writable() = nil while new mail is refused")
	}
	if err := os.Remove(filepath.Join(filepath.Dir(q.cfg.Dir), "ballast")); err != nil {
		t.Fatal(err)
	}
	waitState(t, "the queue to say it takes mail again", func() bool { return q.Writable() == nil })
	if c := strings.Count(logs.String(), "queue: spool has room again"); c != 1 {
		t.Errorf("end of refusal logged %d times, want once", c)
	}
}

// nearlyFullQueue opens a queue with 1 MiB segments and a 64 KiB reserve
// on a real 4 MiB tmpfs, waits for its prepared next segment, and then
// fills the file system with another file until 96 KiB are left: too
// little for another segment. The queue closes when the test ends.
func nearlyFullQueue(t *testing.T, logw io.Writer) *Queue {
	t.Helper()
	mnt := testrelay.MountTmpfs(t, "4m")
	dir := filepath.Join(mnt, "spool")
	cfg := testConfig(dir, nil, logw)
	cfg.SegmentSize = 1 << 20
	cfg.Reserve = 64 << 10
	q := mustOpen(t, cfg)
	t.Cleanup(func() { q.Close() }) // before the tmpfs is unmounted
	waitState(t, "the prepared next segment", func() bool {
		st, err := os.Stat(filepath.Join(dir, spareName))
		return err == nil && st.Size() == cfg.SegmentSize
	})
	ballast := filepath.Join(mnt, "ballast")
	if err := os.Truncate(ballast, testrelay.FillDisk(t, ballast)-96<<10); err != nil {
		t.Fatal(err)
	}
	return q
}

// TestMessageLargerThanSegment: a message larger than a whole segment is
// still taken (into a segment of its own) when the file system has room.
func TestMessageLargerThanSegment(t *testing.T) {
	cfg := testConfig(t.TempDir(), nil, nil)
	cfg.SegmentSize = 16 << 10
	q := mustOpen(t, cfg)
	defer q.Close()
	for i, size := range []int{1000, 40 << 10, 2000, 100 << 10} {
		id, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(i, size)))
		if err != nil {
			t.Fatalf("Put of %d octets with %d-octet segments: %v", size, cfg.SegmentSize, err)
		}
		if b := readBodyOf(t, q, id); !bytes.Equal(b, bodyFor(i, size)) {
			t.Fatalf("message %s damaged", id)
		}
	}
}

// TestPersistentWriteError injects a read-only spool (EROFS on every write
// and segment creation): each failed Update and Put returns at once with
// the error, the episode is logged once however many writes fail, Writable
// and Stats report it, and the first write that succeeds ends it with one
// line.
func TestPersistentWriteError(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EROFS, syscall.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			fl := &faultLayer{errno: errno}
			var logs logBuffer
			q, err := openWith(testConfig(t.TempDir(), nil, &logs), fl)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			id, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net", "x@example.net"), bytes.NewReader(bodyFor(1, 1000)))
			if err != nil {
				t.Fatal(err)
			}
			fl.setFull(true)
			const tries = 50
			for i := range tries {
				err := q.Update(context.Background(), nil, id, 0, Result{State: Deferred, Reply: smtp.NewReply(451, "4.3.0", "later")})
				if !errors.Is(err, errno) {
					t.Fatalf("Update %d on a failing spool: %v, want %v", i, err, errno)
				}
			}
			if _, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(2, 1000))); !errors.Is(err, errno) {
				t.Fatalf("Put on a failing spool: %v, want %v", err, errno)
			}
			if err := q.Writable(); !errors.Is(err, errno) {
				t.Errorf("Writable() = %v, want %v", err, errno)
			}
			if st := q.Stats(); st.WriteErrors < tries {
				t.Errorf("Stats().WriteErrors = %d after %d failed writes", st.WriteErrors, tries)
			}
			fl.setFull(false)
			if err := q.Update(context.Background(), nil, id, 0, Result{State: Sent, Reply: smtp.NewReply(250, "2.0.0", "ok")}); err != nil {
				t.Fatalf("Update after the spool came back: %v", err)
			}
			// A spare that failed while the fault was on is prepared
			// again within a second.
			waitState(t, "the spool to report itself writable", func() bool { return q.Writable() == nil })
			log := logs.String()
			// The write episode; a spare prepared while the fault was
			// on may add a creation episode of its own.
			if c := strings.Count(log, `msg="queue: spool not writable: records cannot be written`); c != 1 {
				t.Errorf("episode start logged %d times for %d failures, want once:\n%s", c, tries, log)
			}
			if c := strings.Count(log, `msg="queue: spool writable again"`); c != 1 {
				t.Errorf("episode end logged %d times, want once", c)
			}
		})
	}
}

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
	// The prepared next segment counts; this checks the active one alone.
	waitState(t, "the prepared next segment", func() bool { return q.c.spareReady.Load() })
	q.c.spareReady.Store(false)
	left := q.active.size - q.active.end
	if !q.HasRoomFor(left - envelopeAllowance - q.cfg.Reserve - 1) {
		t.Error("a message that fits the active segment beside the reserve refused on a full disk")
	}
	if q.HasRoomFor(left - envelopeAllowance - q.cfg.Reserve + 1) {
		t.Error("a message that would use the reserve accepted on a full disk")
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
