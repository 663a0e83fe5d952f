package queuetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
)

// reportedOnce: a report put through the event's PutReported is queued and
// recorded once; a second one for the same tag is refused and stores
// nothing; another tag is its own.
func reportedOnce(t *testing.T, q queue.Store, e queue.Event) {
	t.Helper()
	ctx := context.Background()
	if made, err := e.Reported("delay:test"); made || err != nil {
		t.Fatalf("Reported before any report = %v, %v", made, err)
	}
	var reports []string
	for i, tag := range []string{"delay:test", "delay:test", "delay:other"} {
		env := Env("", "s@example.org")
		rid, err := e.PutReported(ctx, tag, env, bytes.NewReader(Body("report", 300)))
		switch {
		case i == 1 && !errors.Is(err, queue.ErrReported):
			t.Errorf("second PutReported for %s: %q, %v; want ErrReported", tag, rid, err)
			if err == nil {
				reports = append(reports, rid)
			}
		case i != 1 && err != nil:
			t.Fatalf("PutReported for %s: %v", tag, err)
		case i != 1:
			if _, err := q.Show(rid); err != nil {
				t.Errorf("report %s from PutReported not queued: %v", rid, err)
			}
			reports = append(reports, rid)
		}
		if i == 1 && err != nil && env.ID != "" {
			if _, serr := q.Show(env.ID); !errors.Is(serr, queue.ErrNotFound) {
				t.Errorf("refused report %s was stored anyway (Show: %v)", env.ID, serr)
			}
		}
	}
	if made, err := e.Reported("delay:test"); !made || err != nil {
		t.Errorf("Reported after the report = %v, %v", made, err)
	}
	for _, rid := range reports {
		if err := q.Delete(ctx, rid); err != nil {
			t.Fatalf("removing report %s: %v", rid, err)
		}
	}
}
