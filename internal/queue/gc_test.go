package queue

import (
	"bytes"
	"context"
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

func TestSegmentGCAndCopyForward(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	mod := func(c *Config) { c.SegmentSize = 8 << 10; c.CopyForwardLag = 2 }
	q := schedQueue(t, dir, clock, mod)
	ctx := context.Background()
	// A long-lived message: deferred once, then held.
	long := putBody(t, q, testEnv("s@example.org", "r@slow.example"), bodyFor(0, 1500))
	l := mustLease(t, q)
	q.Update(ctx, nil, long, 0, deferred("greylisted"))
	q.Release(l)
	q.Hold(ctx, long)
	firstSeg := q.msgs[long].base.seg.no

	// Traffic that is delivered at once fills many segments.
	for i := 1; i <= 60; i++ {
		id := putBody(t, q, testEnv("s@example.org", "r@fast.example"), bodyFor(i, 1500))
		l := mustLease(t, q)
		if l.Items[0].Env.ID != id {
			t.Fatalf("leased %s, want %s", l.Items[0].Env.ID, id)
		}
		if err := q.Update(ctx, nil, id, 0, Result{State: Sent, Reply: smtp.NewReply(250, "2.0.0", "Ok")}); err != nil {
			t.Fatal(err)
		}
		q.Release(l)
		q.gcStep()
	}
	if st := q.Stats(); st.CopiedForward == 0 || st.SegmentsRemoved < 10 {
		t.Fatalf("gc removed %d segments and copied %d messages", st.SegmentsRemoved, st.CopiedForward)
	}
	q.mu.Lock()
	nsegs, oldest := len(q.segs), q.segs[0].no
	q.mu.Unlock()
	if oldest <= firstSeg || nsegs > 4 {
		t.Fatalf("after gc: %d segments, oldest %d (long-lived message was in %d)", nsegs, oldest, firstSeg)
	}
	nos, _ := listSegments(dir)
	if len(nos) != nsegs {
		t.Fatalf("%d segment files on disk, %d in memory", len(nos), nsegs)
	}
	check := func(q *Queue, when string) {
		info, err := q.Show(long)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if !info.Held || info.Rcpts[0].Attempts != 1 || len(info.Rcpts[0].History) != 1 ||
			info.Rcpts[0].LastReply.Text() != "greylisted" {
			t.Fatalf("%s: copied message lost state: %+v", when, info.Rcpts[0])
		}
		if b := readBodyOf(t, q, long); !bytes.Equal(b, bodyFor(0, 1500)) {
			t.Fatalf("%s: body damaged", when)
		}
		if len(q.msgs) != 1 {
			t.Fatalf("%s: %d messages queued, want 1", when, len(q.msgs))
		}
	}
	check(q, "before restart")
	q.Close()
	q = schedQueue(t, dir, clock, mod)
	defer q.Close()
	check(q, "after restart")
}
