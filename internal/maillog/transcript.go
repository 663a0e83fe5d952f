package maillog

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Transcript writes one SMTP session as text: each line prefixed by an RFC
// 3339 timestamp with milliseconds and "C: " (client) or "S: " (server).
// Secrets are never written: the payload of an AUTH command line and every
// client line of a SASL exchange appear as "<redacted>". Message content is
// not recorded; the server notes its size instead. Methods are safe for
// concurrent use and a nil *Transcript ignores every call.
type Transcript struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	now func() time.Time
}

// OpenTranscript creates DIR/SESSION.log for a new session's transcript.
func OpenTranscript(dir, session string) (*Transcript, error) {
	f, err := os.OpenFile(filepath.Join(dir, session+".log"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("maillog: open transcript: %w", err)
	}
	return &Transcript{f: f, w: bufio.NewWriter(f), now: time.Now}, nil
}

// NewTranscript returns a transcript written to w; now supplies timestamps
// (time.Now when nil). Close flushes it but does not close w.
func NewTranscript(w *bufio.Writer, now func() time.Time) *Transcript {
	if now == nil {
		now = time.Now
	}
	return &Transcript{w: w, now: now}
}

func (t *Transcript) line(prefix, text string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.WriteString(t.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	t.w.WriteByte(' ')
	t.w.WriteString(prefix)
	t.w.WriteString(text)
	t.w.WriteByte('\n')
}

// Client records a command line the client sent (without CRLF). An AUTH
// command keeps its verb and mechanism; its initial response is redacted.
func (t *Transcript) Client(line string) {
	t.line("C: ", RedactCommand(line))
}

// ClientSecret records a client line that carries a secret (a SASL response)
// as "C: <redacted>".
func (t *Transcript) ClientSecret() {
	t.line("C: ", "<redacted>")
}

// Note records a remark of the server's, such as "<message content, 1234
// octets>", as a "*: " line.
func (t *Transcript) Note(text string) {
	t.line("*: ", text)
}

// Server records a reply, one "S: " line per reply line as sent.
func (t *Transcript) Server(r smtp.Reply) {
	if t == nil {
		return
	}
	lines := r.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		text := l
		if r.Enhanced != "" {
			text = string(r.Enhanced) + " " + l
		}
		t.line("S: ", fmt.Sprintf("%03d%s%s", r.Code, sep, strings.TrimRight(text, " ")))
	}
}

// Close flushes the transcript and closes its file, if it owns one.
func (t *Transcript) Close() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.w.Flush()
	if t.f != nil {
		if cerr := t.f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("maillog: close transcript: %w", err)
	}
	return nil
}

// RedactCommand returns a command line safe to record: for AUTH (RFC 4954
// §4) the verb and mechanism are kept and any initial response becomes
// "<redacted>"; other lines are returned unchanged.
func RedactCommand(line string) string {
	if len(line) < 4 || !strings.EqualFold(line[:4], "AUTH") || (len(line) > 4 && line[4] != ' ') {
		return line
	}
	f := strings.Fields(line)
	if len(f) <= 2 {
		return line
	}
	return f[0] + " " + f[1] + " <redacted>"
}
