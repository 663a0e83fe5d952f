// Package maillog writes Ferry's mail log: one log/slog line per event, keyed
// by session and queue ID, in the spirit of Postfix's mail log, and opt-in
// per-connection SMTP transcripts.
//
// Every event function takes the *slog.Logger to write to (nil discards the
// event) and the session ID as its first attributes, so that
// `grep SESSION` or `grep QUEUEID` finds a message's whole story. Later stages
// (deliver, dsn) add their events here with the same shape: an event name as
// the message, then "session" and/or "id", then the event's own attributes.
package maillog

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Event names used as the log message of each line.
const (
	EventConnect    = "connect"
	EventQueued     = "queued"
	EventReject     = "reject"
	EventDisconnect = "disconnect"
)

func emit(l *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	if l == nil {
		return
	}
	l.LogAttrs(context.Background(), level, msg, attrs...)
}

// Connect logs a new SMTP session from the client at remote ("ip:port").
func Connect(l *slog.Logger, session, remote string) {
	emit(l, slog.LevelInfo, EventConnect, slog.String("session", session), slog.String("client", remote))
}

// Queued logs a message accepted into the queue: its queue ID, reverse path,
// recipient count, stored size in octets and declared body type.
func Queued(l *slog.Logger, session, id string, from smtp.Path, rcpts int, size int64, body smtp.BodyType) {
	if body == "" {
		body = smtp.Body7Bit
	}
	emit(l, slog.LevelInfo, EventQueued,
		slog.String("session", session), slog.String("id", id),
		slog.String("from", FormatPath(from)), slog.Int("rcpts", rcpts),
		slog.Int64("size", size), slog.String("body", string(body)))
}

// Reject logs a negative reply the server gave: the stage (command verb such
// as "RCPT", or "CONNECT", "DATA", "END-OF-DATA"), the reply, and optional
// extra attributes such as "from" and "to".
func Reject(l *slog.Logger, session, stage string, reply smtp.Reply, attrs ...slog.Attr) {
	a := make([]slog.Attr, 0, 3+len(attrs))
	a = append(a, slog.String("session", session), slog.String("stage", stage), slog.String("reply", reply.String()))
	a = append(a, attrs...)
	emit(l, slog.LevelInfo, EventReject, a...)
}

// Disconnect logs the end of a session with its command counts in Postfix's
// form ("ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=6").
func Disconnect(l *slog.Logger, session, remote string, counts *CommandCounts) {
	emit(l, slog.LevelInfo, EventDisconnect,
		slog.String("session", session), slog.String("client", remote),
		slog.String("commands", counts.String()))
}

// FormatPath formats a path for logs as "<local@domain>", "<>" for the null
// path. Quoting is not restored: the log shows the address, not wire syntax.
func FormatPath(p smtp.Path) string {
	if p.IsNull() {
		return "<>"
	}
	if p.Domain == "" {
		return "<" + p.LocalPart + ">"
	}
	return "<" + p.LocalPart + "@" + p.Domain + ">"
}

// countedVerbs lists the commands CommandCounts reports, in Postfix's order;
// anything else is counted as "unknown" (the last one).
const countedVerbs = "helo ehlo starttls auth mail rcpt data bdat rset noop vrfy help quit unknown"

// numVerbs is the number of words in countedVerbs.
const numVerbs = 14

// CommandCounts counts a session's commands and how many of each succeeded.
// The zero value is ready to use; it is not safe for concurrent use.
type CommandCounts struct {
	ok, total [numVerbs]int
}

// Record counts one command by verb (any case); ok reports whether its reply
// was positive.
func (c *CommandCounts) Record(verb string, ok bool) {
	i := numVerbs - 1
	v := strings.ToLower(verb)
	for j, name := range strings.Fields(countedVerbs) {
		if name == v {
			i = j
			break
		}
	}
	c.total[i]++
	if ok {
		c.ok[i]++
	}
}

// String formats the counts like Postfix's disconnect line: each used verb as
// "verb=N", or "verb=OK/TOTAL" when some failed, then "commands=OK/TOTAL".
func (c *CommandCounts) String() string {
	if c == nil {
		return "commands=0"
	}
	var b strings.Builder
	var ok, total int
	for i, name := range strings.Fields(countedVerbs) {
		if c.total[i] == 0 {
			continue
		}
		ok += c.ok[i]
		total += c.total[i]
		b.WriteString(name)
		b.WriteByte('=')
		writeRatio(&b, c.ok[i], c.total[i])
		b.WriteByte(' ')
	}
	b.WriteString("commands=")
	writeRatio(&b, ok, total)
	return b.String()
}

func writeRatio(b *strings.Builder, ok, total int) {
	if ok != total {
		b.WriteString(strconv.Itoa(ok))
		b.WriteByte('/')
	}
	b.WriteString(strconv.Itoa(total))
}
