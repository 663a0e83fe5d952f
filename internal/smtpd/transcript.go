package smtpd

import (
	"io"
	"log/slog"

	"github.com/ferrymta/ferry/internal/maillog"
)

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
func (ss *session) transcribeContent(content io.Reader) (io.Reader, *maillog.ContentLines) {
	if ss.tr == nil || !ss.trFull {
		return content, nil
	}
	cl := ss.tr.ContentLines()
	return io.TeeReader(content, cl), cl
}
