package deliver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/smtp"
)

// TestWithRealQueue runs the agent on internal/queue: messages put into a
// spool arrive at a sink, the 8-bit one converted for a 7-bit hop, and a
// deferred recipient is rescheduled, not lost.
func TestWithRealQueue(t *testing.T) {
	s, rt := startSink(t, sink.Options{Keywords: []string{"SIZE 10240000", "PIPELINING", "HELP"}, Strict7Bit: true,
		Rules: []sink.Rule{mustRule(t, "RCPT:later@*=451 4.3.0 try later")}})
	q := openQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	put := func(body string, rcpts ...string) string {
		env := &smtp.Envelope{From: smtp.Path{LocalPart: "s", Domain: "origin.example"}}
		for _, r := range rcpts {
			l, d, _ := strings.Cut(r, "@")
			env.Rcpts = append(env.Rcpts, smtp.Recipient{Addr: smtp.Path{LocalPart: l, Domain: d}})
		}
		id, err := q.Put(ctx, env, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	id1 := put(plainMsg, "a@hop.test", "later@hop.test")
	put(eightBitMsg, "b@hop.test")
	a, _ := testAgent(t, q, rt, func(c *Config) { c.Converter = Downgrader{}; c.Workers = 2 })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	msgs, err := s.Wait(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if hasHigh(m.Data) >= 0 {
			t.Errorf("8-bit octet reached the 7-bit sink: %q", m.Data)
		}
	}
	// The deferred recipient stays queued with the hop's reply.
	deadline := time.Now().Add(5 * time.Second)
	var info *queue.MessageInfo
	for time.Now().Before(deadline) {
		if info, err = q.Show(id1); err == nil && len(info.Rcpts) == 2 && info.Rcpts[1].Attempts > 0 && info.Rcpts[0].State == queue.Sent {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	if err != nil || info == nil {
		t.Fatalf("Show(%s): %v", id1, err)
	}
	later := info.Rcpts[1]
	if later.State == queue.Sent || later.State == queue.Failed || later.LastReply.String() != "451 try later" || later.RemoteMTA == "" {
		t.Errorf("deferred recipient of %s = %+v", id1, later)
	}
}
