package dsn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// TestNotifierKeepsWhenNotQueued: a failure report the queue refuses is
// not dropped: the Notifier calls Event.Keep with the error and logs
// "dsn-deferred" once (not again when the event comes back, Retried);
// once the queue takes it, the "dsn" line says it was retried. Without
// Keep (a backend that cannot keep the message) it is logged
// dsn-suppressed as before.
func TestNotifierKeepsWhenNotQueued(t *testing.T) {
	f := newFixture(t, "")
	env := baseEnv()
	f.put.fail = fmt.Errorf("store: %w", queue.ErrSpoolFull)
	var kept []error
	ev := finishedEvent(env, queue.Failed, queue.Sent, queue.Sent)
	ev.Keep = func(err error) { kept = append(kept, err) }
	f.n.OnEvent(ev)
	ev.Retried = true
	f.n.OnEvent(ev)
	if len(kept) != 2 || !errors.Is(kept[0], queue.ErrSpoolFull) {
		t.Fatalf("Keep called %d times (%v), want twice with ErrSpoolFull", len(kept), kept)
	}
	log := f.log.String()
	if c := strings.Count(log, "msg=dsn-deferred"); c != 1 {
		t.Errorf("dsn-deferred logged %d times, want once:\n%s", c, log)
	}
	if strings.Contains(log, "dsn-suppressed") {
		t.Errorf("a kept report logged as suppressed:\n%s", log)
	}
	f.put.fail = nil
	f.n.OnEvent(ev)
	if len(kept) != 2 {
		t.Errorf("Keep called after the report was queued")
	}
	if n := len(f.put.all()); n != 1 {
		t.Fatalf("%d reports queued, want 1", n)
	}
	if !strings.Contains(f.log.String(), "retried=true") {
		t.Errorf("the report queued on a retry does not say so:\n%s", f.log.String())
	}

	// No Keep: nothing can hold the obligation, so the loss is logged.
	g := newFixture(t, "")
	g.put.fail = errors.New("database gone")
	g.n.OnEvent(finishedEvent(baseEnv(), queue.Failed, queue.Sent, queue.Sent))
	if !strings.Contains(g.log.String(), "msg=dsn-suppressed") || !strings.Contains(g.log.String(), "database gone") {
		t.Errorf("report lost without Keep not logged:\n%s", g.log.String())
	}
}

// TestNotifierHeadersOnlyOnFullSpool: a report returning the whole
// original that the queue refuses as ErrSpoolFull is queued again with the
// original's header only (text/rfc822-headers, RFC 6522), and says so.
func TestNotifierHeadersOnlyOnFullSpool(t *testing.T) {
	f := newFixture(t, "")
	const limit = 8 << 10 // larger reports do not fit
	var puts []int
	n, err := NewNotifier(NotifierConfig{ReportingMTA: "relay.example.com", Logger: f.n.log},
		func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
			b, _ := io.ReadAll(body)
			puts = append(puts, len(b))
			if len(b) > limit {
				return "", queue.ErrSpoolFull
			}
			return f.put.put(ctx, env, strings.NewReader(string(b)))
		})
	if err != nil {
		t.Fatal(err)
	}
	kept := false
	ev := finishedEvent(baseEnv(), queue.Failed, queue.Sent, queue.Sent)
	ev.Body = bodyOf(originalASCII + strings.Repeat("a line of the original's body\r\n", 500))
	ev.Keep = func(error) { kept = true }
	n.OnEvent(ev)
	if kept || len(puts) != 2 || puts[1] >= puts[0] {
		t.Fatalf("puts of %v octets, kept %v: want a whole report refused, then a shorter one queued", puts, kept)
	}
	reps := f.put.all()
	if len(reps) != 1 {
		t.Fatalf("%d reports queued, want 1", len(reps))
	}
	p := mustParse(t, reps[0].body)
	if ct := p.parts[2].header.Get("Content-Type"); !strings.HasPrefix(ct, "text/rfc822-headers") {
		t.Errorf("third part %q, want text/rfc822-headers", ct)
	}
	if !strings.Contains(f.log.String(), `returned="headers (spool full)"`) {
		t.Errorf("the dsn line does not say the original was cut:\n%s", f.log.String())
	}
}
