package deliver

import (
	"context"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/sink"
)

// startSink starts a sink next hop and returns it with a route to it.
func startSink(t testing.TB, opts sink.Options) (*sink.Sink, route.Route) {
	t.Helper()
	s, err := sink.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ap := netip.MustParseAddrPort(s.Addr())
	return s, route.Route{Pattern: "*", Hops: []route.NextHop{{Host: "127.0.0.1", Port: int(ap.Port()), NoMX: true}}}
}

func mustRule(t *testing.T, s string) sink.Rule {
	t.Helper()
	r, err := sink.ParseRule(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSinkDomino delivers 8-bit MIME through the real converter to a sink
// playing Lotus Domino with 8BITMIME switched off and strict 7-bit checking.
func TestSinkDomino(t *testing.T) {
	s, rt := startSink(t, sink.Options{Keywords: []string{"SIZE 10240000", "PIPELINING", "HELP"}, Strict7Bit: true})
	q := newMemQueue()
	a, logs := testAgent(t, q, rt, func(c *Config) { c.Converter = Downgrader{} })
	a.DeliverLease(context.Background(), lease(testMessage("DOM1", eightBitMsg, "x@hop.test")))
	q.expect(t, "DOM1", 0, queue.Sent, "250")
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages", len(msgs))
	}
	m := msgs[0]
	if i := hasHigh(m.Data); i >= 0 {
		t.Fatalf("octet > 127 at %d in %q", i, m.Data)
	}
	if strings.Contains(m.MailLine, "BODY=") {
		t.Errorf("MAIL line %q claims a body type", m.MailLine)
	}
	// Decoding gives back the original text.
	head, body, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	var dec []byte
	var err error
	switch {
	case strings.Contains(strings.ToLower(head), "content-transfer-encoding: base64"):
		dec, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(body, "\r\n", ""))
	case strings.Contains(strings.ToLower(head), "content-transfer-encoding: quoted-printable"):
		dec, err = io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	default:
		t.Fatalf("no 7-bit transfer encoding in %q", head)
	}
	if err != nil || string(dec) != "Grüße aus Köln.\r\n" {
		t.Errorf("decoded body %q, %v", dec, err)
	}
	if !strings.Contains(logs.String(), "event=converted") || !strings.Contains(logs.String(), "body=8BITMIME→7BIT converted, DATA") {
		t.Errorf("log lacks the conversion:\n%s", logs)
	}
}

// TestSinkPassThrough: a hop with the default keywords gets the message
// byte-identical with BODY=8BITMIME, pipelined.
func TestSinkPassThrough(t *testing.T) {
	s, rt := startSink(t, sink.Options{})
	q := newMemQueue()
	a, _ := testAgent(t, q, rt, func(c *Config) { c.Converter = Downgrader{} })
	a.DeliverLease(context.Background(), lease(testMessage("PT1", eightBitMsg, "x@hop.test", "y@hop.test")))
	q.expect(t, "PT1", 0, queue.Sent, "250")
	q.expect(t, "PT1", 1, queue.Sent, "250")
	msgs := s.Messages()
	if len(msgs) != 1 || string(msgs[0].Data) != eightBitMsg {
		t.Fatalf("sink got %+v", msgs)
	}
	if !strings.Contains(msgs[0].MailLine, "BODY=8BITMIME") || !strings.Contains(msgs[0].MailLine, "SIZE=") {
		t.Errorf("MAIL line %q", msgs[0].MailLine)
	}
}

// TestSinkNoESMTP: EHLO refused, HELO used, 8-bit converted.
func TestSinkNoESMTP(t *testing.T) {
	s, rt := startSink(t, sink.Options{NoESMTP: true, Strict7Bit: true})
	q := newMemQueue()
	a, _ := testAgent(t, q, rt, func(c *Config) { c.Converter = Downgrader{} })
	a.DeliverLease(context.Background(), lease(testMessage("NE1", eightBitMsg, "x@hop.test"), testMessage("NE2", plainMsg, "x@hop.test")))
	q.expect(t, "NE1", 0, queue.Sent, "250")
	q.expect(t, "NE2", 0, queue.Sent, "250")
	if got := s.Messages(); len(got) != 2 || hasHigh(got[0].Data) >= 0 || string(got[1].Data) != plainMsg {
		t.Errorf("sink got %+v", got)
	}
	if s.Connections() != 1 {
		t.Errorf("connections = %d, want 1", s.Connections())
	}
}

// TestSinkRetry: the first attempt is deferred by a scripted 451, the next
// one delivers.
func TestSinkRetry(t *testing.T) {
	s, rt := startSink(t, sink.Options{Rules: []sink.Rule{mustRule(t, "RCPT#1:*=451 4.3.0 try later"), mustRule(t, "RCPT:bad@*=550 5.1.1 no such user")}})
	q := newMemQueue()
	a, _ := testAgent(t, q, rt, nil)
	it := testMessage("RT1", plainMsg, "x@hop.test", "bad@hop.test")
	a.DeliverLease(context.Background(), lease(it))
	q.expect(t, "RT1", 0, queue.Deferred, "451 4.3.0 try later")
	q.expect(t, "RT1", 1, queue.Failed, "550 5.1.1 no such user")
	it.Rcpts = []int{0}
	a.DeliverLease(context.Background(), lease(it))
	q.expect(t, "RT1", 0, queue.Sent, "250")
	if _, err := s.Wait(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
}

// TestAgentRun runs workers against a queue until every lease is done.
func TestAgentRun(t *testing.T) {
	s, rt := startSink(t, sink.Options{})
	var leases []*queue.Lease
	for i := range 8 {
		leases = append(leases, lease(testMessage("RUN"+itoa(i), plainMsg, "x@hop.test")))
	}
	q := newMemQueue(leases...)
	a, _ := testAgent(t, q, rt, func(c *Config) { c.Workers = 3; c.PollInterval = 10 * time.Millisecond; c.MaxConnsPerHop = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if _, err := s.Wait(ctx, 8); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		q.expect(t, "RUN"+itoa(i), 0, queue.Sent, "250")
	}
	q.mu.Lock()
	released := q.released
	q.mu.Unlock()
	if released != 8 {
		t.Errorf("released %d leases, want 8", released)
	}
	if c := s.Connections(); c > 2 {
		t.Errorf("%d connections with a limit of 2 per hop", c)
	}
}
