package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/config"
)

// logOutput is where the mail log goes: standard error, or the file of
// log.file, which Reopen opens again by name so that log rotation works
// (logrotate renames the file, then sends SIGHUP).
//
// Lines for a file are gathered and written together at most
// logFlushDelay after the first of them (or at once when logBufferMax
// have gathered), instead of with one write(2) each: under load that is
// one system call for dozens of lines. A process killed outright loses
// the lines of its last few milliseconds; Reopen and Close write out what
// is gathered first. Standard error is written line by line.
type logOutput struct {
	// wmu orders the writes to the file: it is held from taking the
	// gathered lines to writing them.
	wmu sync.Mutex
	mu  sync.Mutex
	w   io.Writer
	// file is nil for standard error.
	file *os.File
	path string
	// buf holds lines not yet written; timer writes them out.
	buf   []byte
	timer *time.Timer
	armed bool
}

// logFlushDelay is the longest a line waits before it is written to the
// log file; logBufferMax the most octets gathered before a writer waits
// for them to be written.
const (
	logFlushDelay = 5 * time.Millisecond
	logBufferMax  = 256 << 10
)

// openLogOutput opens path for appending, or uses stderr when path is "".
func openLogOutput(path string, stderr io.Writer) (*logOutput, error) {
	o := &logOutput{w: stderr, path: path}
	if path == "" {
		return o, nil
	}
	f, err := openLogFile(path)
	if err != nil {
		return nil, err
	}
	o.w, o.file = f, f
	o.timer = time.AfterFunc(time.Hour, func() { o.flush() })
	o.timer.Stop()
	return o, nil
}

func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	return f, nil
}

// Write writes one log record: at once to standard error, gathered with
// others for a file.
func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	if o.file == nil {
		defer o.mu.Unlock()
		return o.w.Write(p)
	}
	o.buf = append(o.buf, p...)
	full := len(o.buf) >= logBufferMax
	if !full && !o.armed {
		o.armed = true
		o.timer.Reset(logFlushDelay)
	}
	o.mu.Unlock()
	if full {
		if err := o.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush writes the gathered lines to the file.
func (o *logOutput) flush() error {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.mu.Lock()
	b, w := o.buf, o.w
	o.buf, o.armed = nil, false
	o.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	_, err := w.Write(b)
	return err
}

// Reopen opens the log file again by its name (a renamed file is let go)
// and reports whether there was a file to reopen. When opening fails the
// old file stays in use. Lines gathered before go to the old file.
func (o *logOutput) Reopen() (bool, error) {
	if o.file == nil {
		return false, nil
	}
	f, err := openLogFile(o.path)
	if err != nil {
		return true, err
	}
	o.wmu.Lock()
	o.mu.Lock()
	b, old := o.buf, o.file
	o.buf = nil
	o.mu.Unlock()
	if len(b) > 0 {
		old.Write(b) // a failure here is the old file's; the lines have nowhere else to go
	}
	o.mu.Lock()
	o.w, o.file = f, f
	o.mu.Unlock()
	o.wmu.Unlock()
	return true, old.Close()
}

// Close writes out the gathered lines and closes the log file, if any.
func (o *logOutput) Close() {
	if o.file == nil {
		return
	}
	o.timer.Stop()
	o.flush()
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.file.Close()
}

// newLogger builds the mail log from the [log] section. The level is a
// LevelVar, so that a reload can change it; the output can be reopened
// (SIGHUP) and closed. In the JSON format durations are seconds (a
// number), not Go's nanoseconds.
func newLogger(c config.Log, stderr io.Writer) (*slog.Logger, *slog.LevelVar, *logOutput, error) {
	out, err := openLogOutput(c.File, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		out.Close()
		return nil, nil, nil, fmt.Errorf("log level %q: %w", c.Level, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		opts.ReplaceAttr = durationSeconds
		return slog.New(slog.NewJSONHandler(out, opts)), level, out, nil
	}
	return slog.New(slog.NewTextHandler(out, opts)), level, out, nil
}

// durationSeconds turns a duration attribute into seconds, for the JSON log.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}

// reopenLog reopens the log file on SIGHUP, before the reload logs
// anything, and logs the outcome.
func reopenLog(out *logOutput, logger *slog.Logger) {
	start := time.Now()
	reopened, err := out.Reopen()
	switch {
	case err != nil:
		logger.Error("SIGHUP: cannot reopen the log file; writing on to the old one", "file", out.path, "err", err)
	case reopened:
		logger.Info("SIGHUP: log file reopened", "file", out.path, "elapsed", time.Since(start))
	}
}
