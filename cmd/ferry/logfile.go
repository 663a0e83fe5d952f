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
type logOutput struct {
	mu   sync.Mutex
	w    io.Writer
	file *os.File // nil for standard error
	path string
}

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
	return o, nil
}

func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	return f, nil
}

// Write writes one log record.
func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

// Reopen opens the log file again by its name (a renamed file is let go)
// and reports whether there was a file to reopen. When opening fails the
// old file stays in use.
func (o *logOutput) Reopen() (bool, error) {
	if o.file == nil {
		return false, nil
	}
	f, err := openLogFile(o.path)
	if err != nil {
		return true, err
	}
	o.mu.Lock()
	old := o.file
	o.w, o.file = f, f
	o.mu.Unlock()
	return true, old.Close()
}

// Close closes the log file, if any.
func (o *logOutput) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.file != nil {
		o.file.Close()
	}
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
