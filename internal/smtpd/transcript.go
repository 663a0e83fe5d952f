package smtpd

import (
	"bytes"
	"io"
	"log/slog"

	"github.com/ferrymta/ferry/internal/maillog"
)

// maxTranscriptLine is where a content line without a line break is cut
// in a full-content transcript, so a binary body cannot grow the buffer.
const maxTranscriptLine = 8 << 10

// openTranscript starts the session's transcript when the configuration
// asks for one: TranscriptFor decides per client, else TranscriptDir
// applies to every session (content summarised).
func (ss *session) openTranscript() {
	cfg := &ss.srv.cfg
	dir, full := cfg.TranscriptDir, false
	if cfg.TranscriptFor != nil {
		dir, full = cfg.TranscriptFor(ss.info.Remote)
	}
	if dir == "" {
		return
	}
	tr, err := maillog.OpenTranscript(dir, ss.info.ID)
	if err != nil {
		if ss.log != nil {
			ss.log.Warn("transcript", slog.String("session", ss.info.ID), slog.String("error", err.Error()))
		}
		return
	}
	ss.tr, ss.trFull = tr, full
}

// transcribeContent returns content recording each line of it in the
// transcript, when the session records full content; else content itself.
func (ss *session) transcribeContent(content io.Reader) (io.Reader, *contentLines) {
	if ss.tr == nil || !ss.trFull {
		return content, nil
	}
	cl := &contentLines{tr: ss.tr}
	return io.TeeReader(content, cl), cl
}

// contentLines writes message content to a transcript as "C: " lines,
// without line breaks, as received after dot-unstuffing.
type contentLines struct {
	tr      *maillog.Transcript
	pending []byte
}

// Write takes content octets in order; it never fails.
func (c *contentLines) Write(p []byte) (int, error) {
	c.pending = append(c.pending, p...)
	for {
		i := bytes.IndexByte(c.pending, '\n')
		if i < 0 {
			break
		}
		c.tr.Client(string(bytes.TrimSuffix(c.pending[:i], []byte("\r"))))
		c.pending = c.pending[i+1:]
	}
	if len(c.pending) > maxTranscriptLine {
		c.tr.Client(string(c.pending))
		c.pending = c.pending[:0]
	}
	return len(p), nil
}

// flush records a last line without a line break; a nil c does nothing.
func (c *contentLines) flush() {
	if c != nil && len(c.pending) > 0 {
		c.tr.Client(string(c.pending))
		c.pending = nil
	}
}
