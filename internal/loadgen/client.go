// Package loadgen is Ferry's load generator: a bounded SMTP client loop
// that drives any server over loopback with N parallel sessions and M
// messages, records transaction latencies and errors by reply, and a
// counting sink that plays the next hop at the far end of a relay so that
// end-to-end throughput, duplicates and missing messages can be measured.
// "ferry bench" is its command-line front end.
package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Config describes one load run.
type Config struct {
	// Target is the SMTP server's address, host:port.
	Target string
	// Sessions is the number of parallel sessions; default 1.
	Sessions int
	// Messages is the number of messages the run tries to send, in all;
	// each is tried once. Required.
	Messages int
	// PerConn is the number of messages sent on one connection before it
	// is closed with QUIT and a new one opened; default 1.
	PerConn int
	// Size is the approximate size of each message in octets; default 4096.
	Size int
	// Kind is the kind of body; default KindASCII.
	Kind Kind
	// Pipelining sends MAIL, RCPT and DATA in one write when the server
	// offers PIPELINING (RFC 2920).
	Pipelining bool
	// From and To are the envelope sender and recipient; defaults
	// "bench@client.example" and "sink@relay.example".
	From, To string
	// HeloName is the EHLO name; default "bench.example".
	HeloName string
	// RunID tags every message (X-Ferry-Bench: RUNID SEQ) so a counting
	// sink can tell this run's messages from any other's; default: made
	// from the clock.
	RunID string
	// SeqBase is added to every message's sequence number in
	// X-Ferry-Bench, so that several clients of one run (one per relay of a
	// cluster, sending to one counting sink) number their messages apart.
	SeqBase int
	// Deadline ends the run: sessions stop starting transactions at it and
	// every network operation is cut off by it. Required.
	Deadline time.Time
	// IOTimeout bounds each read or write; default 60s.
	IOTimeout time.Duration
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Sessions <= 0 {
		c.Sessions = 1
	}
	if c.PerConn <= 0 {
		c.PerConn = 1
	}
	if c.Size <= 0 {
		c.Size = 4096
	}
	if c.Kind == "" {
		c.Kind = KindASCII
	}
	if c.From == "" {
		c.From = "bench@client.example"
	}
	if c.To == "" {
		c.To = "sink@relay.example"
	}
	if c.HeloName == "" {
		c.HeloName = "bench.example"
	}
	if c.RunID == "" {
		c.RunID = NewRunID()
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = 60 * time.Second
	}
	return c
}

// NewRunID returns a run ID made from the clock, unique enough to tell runs
// apart at one sink.
func NewRunID() string { return strconv.FormatInt(time.Now().UnixNano(), 36) }

// Result is what a run observed at the client.
type Result struct {
	// RunID is the run's tag.
	RunID string `json:"run_id"`
	// Attempted counts messages tried; Accepted those answered 250 after
	// the content; Failed the rest.
	Attempted int `json:"attempted"`
	Accepted  int `json:"accepted"`
	Failed    int `json:"failed"`
	// Start and End bound the run; FirstAccept and LastAccept are the
	// times of the first and last final 250.
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	FirstAccept time.Time `json:"first_accept"`
	LastAccept  time.Time `json:"last_accept"`
	// Latency summarises the accepted transactions (MAIL to final 250).
	Latency Latencies `json:"latency"`
	// Errors counts failed messages by the reply that failed them
	// ("451 4.3.0"), or by "connect", "io" or "deadline" when there was no
	// reply.
	Errors map[string]int `json:"errors"`
	// AcceptedSeqs[i] is set when message i was accepted.
	AcceptedSeqs []bool `json:"-"`
	// Connections counts connections opened.
	Connections int `json:"connections"`
}

// AcceptRate is accepted messages per second over the run's wall time.
func (r Result) AcceptRate() float64 {
	d := r.End.Sub(r.Start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(r.Accepted) / d
}

// run is the state the sessions of one run share.
type run struct {
	cfg      Config
	tmpl     *template
	next     atomic.Int64
	accepted []atomic.Bool
	conns    atomic.Int64
	mu       sync.Mutex
	errors   map[string]int
	first    time.Time
	last     time.Time
}

// claim returns the next message sequence number, or -1 when all are
// taken or the deadline has passed.
func (r *run) claim() int {
	if !time.Now().Before(r.cfg.Deadline) {
		return -1
	}
	n := r.next.Add(1) - 1
	if n >= int64(r.cfg.Messages) {
		return -1
	}
	return int(n)
}

// fail counts a failed message under key.
func (r *run) fail(key string) {
	r.mu.Lock()
	r.errors[key]++
	r.mu.Unlock()
}

// accept marks message seq accepted at t.
func (r *run) accept(seq int, t time.Time) {
	r.accepted[seq].Store(true)
	r.mu.Lock()
	if r.first.IsZero() || t.Before(r.first) {
		r.first = t
	}
	if t.After(r.last) {
		r.last = t
	}
	r.mu.Unlock()
}

// Run sends cfg.Messages messages over cfg.Sessions parallel sessions and
// returns what it saw. It returns an error only for an unusable
// configuration; failures of the server are counted in Result.Errors.
// Every message is tried at most once, so the run ends after at most
// cfg.Messages transactions, or at cfg.Deadline, or when ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if cfg.Target == "" || cfg.Messages <= 0 || cfg.Deadline.IsZero() {
		return Result{}, errors.New("loadgen: Target, Messages and Deadline are required")
	}
	tmpl, err := newTemplate(cfg.Kind, cfg.Size, cfg.RunID, cfg.From, cfg.To)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	ctx, cancel := context.WithDeadline(ctx, cfg.Deadline)
	defer cancel()
	r := &run{cfg: cfg, tmpl: tmpl, accepted: make([]atomic.Bool, cfg.Messages), errors: map[string]int{}}
	recs := make([]*recorder, cfg.Sessions)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = &recorder{}
		wg.Add(1)
		go func(rec *recorder) {
			defer wg.Done()
			r.session(ctx, rec)
		}(recs[i])
	}
	wg.Wait()
	res := Result{
		RunID: cfg.RunID, Start: start, End: time.Now(),
		FirstAccept: r.first, LastAccept: r.last,
		Latency: summarise(recs), Errors: r.errors,
		AcceptedSeqs: make([]bool, cfg.Messages), Connections: int(r.conns.Load()),
	}
	res.Attempted = min(int(r.next.Load()), cfg.Messages)
	for i := range r.accepted {
		if r.accepted[i].Load() {
			res.AcceptedSeqs[i] = true
			res.Accepted++
		}
	}
	res.Failed = res.Attempted - res.Accepted
	return res, nil
}

// session opens connections one after another until the run's messages
// are claimed or its deadline passes. Each claimed message is tried once.
func (r *run) session(ctx context.Context, rec *recorder) {
	for ctx.Err() == nil {
		seq := r.claim()
		if seq < 0 {
			return
		}
		r.connection(ctx, seq, rec)
	}
}

// connection runs one connection: greeting, EHLO, then up to PerConn
// transactions starting with message seq, then QUIT.
func (r *run) connection(ctx context.Context, seq int, rec *recorder) {
	d := net.Dialer{Timeout: r.cfg.IOTimeout}
	conn, err := d.DialContext(ctx, "tcp", r.cfg.Target)
	if err != nil {
		r.fail(r.errKey(ctx, "connect"))
		return
	}
	r.conns.Add(1)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	c := &clientConn{conn: conn, br: bufio.NewReaderSize(conn, 4096), bw: bufio.NewWriterSize(conn, 4096), r: r}
	ext, reply, err := c.hello()
	if err != nil {
		r.fail(r.errKey(ctx, "io"))
		return
	}
	if reply != nil {
		r.fail(replyKey(*reply))
		return
	}
	for i := 0; ; i++ {
		ok := c.transaction(ctx, seq, ext, rec)
		if !ok || i+1 >= r.cfg.PerConn {
			break
		}
		if seq = r.claim(); seq < 0 {
			break
		}
	}
	c.quit()
}

// errKey names a failure without a reply: "deadline" when the run's
// deadline or cancellation caused it (the connection's deadline may fire
// a moment before the context's timer does).
func (r *run) errKey(ctx context.Context, what string) string {
	if ctx.Err() != nil || !time.Now().Before(r.cfg.Deadline) {
		return "deadline"
	}
	return what
}

// replyKey names a failing reply by its code and enhanced code.
func replyKey(rp smtp.Reply) string {
	if rp.Enhanced != "" {
		return strconv.Itoa(rp.Code) + " " + string(rp.Enhanced)
	}
	return strconv.Itoa(rp.Code)
}
