package maillog

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestEpisode: a thousand failures over three minutes give one start line,
// one "still" line per minute with the count since the last line, and one
// end line; retry delays double from 1 s and stop at 30 s.
func TestEpisode(t *testing.T) {
	var buf testrelay.SyncBuffer
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := NewEpisode(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelError, "disk failing", "disk still failing", "disk back", func() time.Time { return now })
	if e.Err() != nil || e.OK() {
		t.Fatal("a new episode is already going on")
	}
	var delays []time.Duration
	fail := errors.New("no space left on device")
	for i := range 1000 {
		d := e.Fail(fail)
		if i < 7 {
			delays = append(delays, d)
		}
		now = now.Add(180 * time.Millisecond) // 1000 failures in 3 minutes
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Errorf("retry delays %v, want %v", delays, want)
			break
		}
	}
	if !errors.Is(e.Err(), fail) {
		t.Errorf("Err() = %v during the episode", e.Err())
	}
	if d := e.Retry(); d != 30*time.Second {
		t.Errorf("Retry() = %v after 1000 failures, want 30s (the pace Fail gives)", d)
	}
	if !e.OK() || e.Err() != nil || e.OK() {
		t.Error("OK did not end the episode once")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var start, still, end int
	for _, l := range lines {
		switch {
		case strings.Contains(l, `msg="disk failing"`):
			start++
		case strings.Contains(l, `msg="disk still failing"`):
			still++
			if !strings.Contains(l, "failures=333") && !strings.Contains(l, "failures=334") {
				t.Errorf("still line without the count of the last minute: %s", l)
			}
		case strings.Contains(l, `msg="disk back"`):
			end++
			if !strings.Contains(l, "failures=1000") || !strings.Contains(l, "duration=3m0") {
				t.Errorf("end line without the totals: %s", l)
			}
		}
	}
	if start != 1 || still != 2 || end != 1 || len(lines) != 4 {
		t.Errorf("%d start, %d still, %d end lines (%d in all), want 1, 2, 1:\n%s", start, still, end, len(lines), buf.String())
	}
}

// TestEpisodeLineBeforeState: whoever sees an episode end (Err returns nil)
// finds its end line in the log, and start and end lines alternate in the
// order of the state changes, however Fail and OK interleave.
func TestEpisodeLineBeforeState(t *testing.T) {
	var buf testrelay.SyncBuffer
	e := NewEpisode(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn, "down", "still down", "up", nil)
	const rounds = 300
	for i := range rounds {
		e.Fail(errors.New("full"))
		ended := make(chan struct{})
		go func() { e.OK(); close(ended) }()
		for e.Err() != nil {
		}
		if got := strings.Count(buf.String(), `msg=up`); got != i+1 {
			t.Fatalf("round %d: Err() = nil with %d end lines in the log, want %d", i, got, i+1)
		}
		<-ended
	}
	done := make(chan struct{})
	for range 2 {
		go func() {
			for range rounds {
				e.Fail(errors.New("full"))
				e.OK()
			}
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	want := "down"
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var msg string
		switch {
		case strings.Contains(l, "msg=down"):
			msg = "down"
		case strings.Contains(l, "msg=up"):
			msg = "up"
		default:
			continue
		}
		if msg != want {
			t.Fatalf("%q line where %q was due: the lines are out of the order of the state changes", msg, want)
		}
		want = map[string]string{"down": "up", "up": "down"}[msg]
	}
}
