package maillog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Retry delays of an Episode: the first retry after one second, each later
// one doubled, never more than 30 seconds apart.
const (
	EpisodeRetryMin = time.Second
	EpisodeRetryMax = 30 * time.Second
)

// EpisodeRepeat is how often a lasting episode is logged again, with the
// number of failures since the last line.
const EpisodeRepeat = time.Minute

// Episode logs a lasting condition, such as a spool that cannot be written,
// without flooding the log: one line when it starts (the first failure),
// at most one line per EpisodeRepeat while it lasts (with the count of
// failures meanwhile), and one line when it ends. It also paces the
// retries of whoever meets the condition: Fail returns the delay before
// the next attempt, from EpisodeRetryMin doubling up to EpisodeRetryMax.
// Its methods are safe for concurrent use; the zero value is not usable,
// build one with NewEpisode.
type Episode struct {
	log               *slog.Logger
	level             slog.Level
	start, still, end string
	now               func() time.Time

	mu       sync.Mutex
	active   bool
	since    time.Time
	lastLine time.Time
	lastErr  error
	count    int // failures since the last line
	total    int // failures in this episode
}

// NewEpisode returns an episode that logs start (at level), still (at
// level, every EpisodeRepeat) and end (at Info) to l; now is the clock
// (nil: time.Now).
func NewEpisode(l *slog.Logger, level slog.Level, start, still, end string, now func() time.Time) *Episode {
	if now == nil {
		now = time.Now
	}
	return &Episode{log: l, level: level, start: start, still: still, end: end, now: now}
}

// Fail records one failure with its error and attributes, logging the start
// of the episode or, once per EpisodeRepeat, that it goes on. It returns
// how long to wait before the next attempt.
func (e *Episode) Fail(err error, attrs ...any) time.Duration {
	e.mu.Lock()
	now := e.now()
	e.lastErr = err
	e.total++
	e.count++
	var msg string
	var extra []any
	switch {
	case !e.active:
		e.active, e.since, e.lastLine, e.count = true, now, now, 0
		msg = e.start
	case now.Sub(e.lastLine) >= EpisodeRepeat:
		msg = e.still
		extra = []any{"failures", e.count, "since", e.since.UTC().Format(time.RFC3339)}
		e.lastLine, e.count = now, 0
	}
	delay := e.delayLocked()
	// The line is written under e.mu, so that whoever sees the state
	// (Err) finds its line in the log, and the start and end lines of
	// episodes come out in the order of the state changes.
	if msg != "" && e.log != nil {
		e.log.Log(context.Background(), e.level, msg, append(append(extra, attrs...), "err", err)...)
	}
	e.mu.Unlock()
	return delay
}

// Retry returns the wait before the next attempt after the failures of the
// episode so far, as Fail does, without recording a failure: for a caller
// that checks again whether the condition has ended.
func (e *Episode) Retry() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.delayLocked()
}

// delayLocked is the retry delay after e.total failures; callers hold e.mu.
func (e *Episode) delayLocked() time.Duration {
	delay := EpisodeRetryMin
	for i := 1; i < e.total && delay < EpisodeRetryMax; i++ {
		delay *= 2
	}
	return min(delay, EpisodeRetryMax)
}

// OK ends the episode, if one is going on, with one line giving its length
// and the number of failures, and reports whether it ended one.
func (e *Episode) OK(attrs ...any) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active {
		return false
	}
	d := e.now().Sub(e.since)
	total := e.total
	e.active, e.total, e.count, e.lastErr = false, 0, 0, nil
	// Logged under e.mu, as in Fail.
	if e.log != nil {
		e.log.Info(e.end, append([]any{"failures", total, "duration", d.Round(time.Millisecond).String()}, attrs...)...)
	}
	return true
}

// Err returns the last failure's error while the episode goes on, else nil.
func (e *Episode) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active {
		return nil
	}
	return e.lastErr
}
