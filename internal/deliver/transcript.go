package deliver

import (
	"fmt"
	"io"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/route"
)

// TranscriptFunc decides, for a new connection to target, whether its
// session is recorded: it returns the transcript to write (nil: none) and
// whether message content is recorded line by line (otherwise only its
// size is noted). The Client closes the transcript with the connection.
type TranscriptFunc func(target route.Target) (tr *maillog.Transcript, fullContent bool)

// SetTranscript makes the client record its session from now on in tr
// (nil: none), starting with the greeting already read; full records
// message content line by line. AUTH payloads are always redacted.
func (c *Client) SetTranscript(tr *maillog.Transcript, full bool) {
	c.tr, c.trFull = tr, full
	if tr == nil {
		return
	}
	tr.Note("connected to " + c.target.String())
	if c.greeting.Code != 0 {
		tr.Server(c.greeting)
	}
}

// transcribeLine records a command line the client sent; the lines of a
// SASL exchange after the AUTH command are secrets (RFC 4954 §4).
func (c *Client) transcribeLine(line string) {
	if c.trSecret {
		c.tr.ClientSecret()
		return
	}
	c.tr.Client(line)
}

// closeTranscript flushes and closes the transcript, once.
func (c *Client) closeTranscript() {
	if c.tr != nil {
		_ = c.tr.Close()
		c.tr = nil
	}
}

// contentRecorder notes message content in the transcript: its size, and
// with full content each line (as sent before dot-stuffing).
type contentRecorder struct {
	tr    *maillog.Transcript
	lines *maillog.ContentLines
	noted bool
}

// recordContent returns the recorder for one message's content; it is a
// no-op when the session has no transcript.
func (c *Client) recordContent() *contentRecorder {
	r := &contentRecorder{tr: c.tr}
	if c.tr != nil {
		if c.trFull {
			r.lines = c.tr.ContentLines()
		} else {
			r.lines = (*maillog.Transcript)(nil).ContentLines() // counts only
		}
	}
	return r
}

// Write records content octets in order; it never fails.
func (r *contentRecorder) Write(p []byte) (int, error) {
	if r.lines == nil {
		return len(p), nil
	}
	return r.lines.Write(p)
}

// note ends the content: a last partial line, then the size; only the
// first call writes.
func (r *contentRecorder) note(what string) {
	if r.tr == nil || r.noted {
		return
	}
	r.noted = true
	r.lines.Flush()
	r.tr.Note(fmt.Sprintf("<message content, %d octets %s>", r.lines.Octets(), what))
}

// teeContent returns src recording what is read from it in rec.
func teeContent(src io.Reader, rec *contentRecorder) io.Reader {
	if rec.tr == nil {
		return src
	}
	return io.TeeReader(src, rec)
}
