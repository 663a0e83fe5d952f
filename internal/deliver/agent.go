package deliver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/tlspolicy"
)

// Queue is what delivery needs of the queue: the scheduler side of the
// queue contract (leases by next-hop key, renewal, outcomes fenced by the
// lease's epoch, release). Lease may block until there is work; a nil lease
// with a nil error means none is due. Renew is called before each message,
// so that a long delivery is not taken back and delivered twice.
type Queue = queue.Scheduler

// Config configures an Agent. Zero fields take the defaults named.
type Config struct {
	// Routes maps recipient domains to next hops. Required; SetRoutes
	// replaces it while the agent runs.
	Routes *route.Table
	// HeloName is the EHLO name unless a route sets one; default
	// "localhost".
	HeloName string
	// Workers is the number of leases delivered at once; default 4.
	Workers int
	// MaxConnsPerHop limits open connections per next hop unless a route
	// sets MaxConnections; default 10.
	MaxConnsPerHop int
	// MaxMessagesPerConn limits messages per connection unless a route
	// sets MaxMessagesPerConnection; default 100.
	MaxMessagesPerConn int
	// IdleTimeout closes a connection unused this long; default 5s.
	IdleTimeout time.Duration
	// MaxTargets limits the addresses tried per delivery attempt (like
	// Postfix's smtp_mx_address_limit); default 5.
	MaxTargets int
	// Timeouts are the per-phase timeouts (RFC 5321 §4.5.3.2).
	Timeouts Timeouts
	// RootCAs verifies hops of tls=required routes; nil: system roots.
	RootCAs *x509.CertPool
	// Converter converts content for hops that need it; nil makes such
	// recipients fail with 554 5.6.3.
	Converter Converter
	// Signer signs content after conversion (DKIM, ARC); nil: Ferry adds
	// no signature.
	Signer Signer
	// Dial opens connections; nil: net.Dialer.
	Dial DialFunc
	// Hops is the hop-capability cache; nil: a new one.
	Hops *HopCache
	// Logger receives delivery log lines; nil: slog.Default().
	Logger *slog.Logger
	// PollInterval is the wait after an empty lease or a Lease error;
	// default 1s.
	PollInterval time.Duration
	// ShutdownGrace is how long deliveries in progress may go on after
	// Run's context ends before their connections are cut; default 30s.
	ShutdownGrace time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// OnRelayed, when set, is called after recipients that asked for
	// NOTIFY=SUCCESS were accepted by a next hop without the DSN extension,
	// so that the sender gets an "Action: relayed" report (RFC 3461
	// §5.2.2). rcpts are indexes into env.Rcpts; body opens the message.
	OnRelayed func(env *smtp.Envelope, rcpts []int, remoteMTA string, reply smtp.Reply, body func() (io.ReadCloser, error))
	// Transcript, when set, is asked at every new connection whether to
	// record the session (see TranscriptFunc).
	Transcript TranscriptFunc
	// TLSPolicy, when set, decides the TLS policy (DANE, MTA-STS) of the
	// MX hosts of direct deliveries, and DANE for the next hops of routes
	// with tls = "dane" or "dane-only"; nil: opportunistic STARTTLS only
	// (and "dane-only" routes defer).
	TLSPolicy TLSPolicy
}

// Replies for connection-level failures. All defer: the hop may be back or
// reconfigured before the message expires, when the queue turns the last
// reply's 4.x.y into 5.x.y (a tls=required route ends with 5.7.10).

// ReplyTLSNotOffered returns the reply for this case: the route requires TLS and the hop lacks
// STARTTLS (RFC 3207, RFC 5248 X.7.10 "Encryption needed").
func ReplyTLSNotOffered() smtp.Reply {
	return smtp.NewReply(451, "4.7.10", "TLS required by route but next hop does not offer STARTTLS")
}

// ReplyAuthWithoutTLS returns the reply for this case: credentials are configured and TLS is not up.
func ReplyAuthWithoutTLS() smtp.Reply {
	return smtp.NewReply(451, "4.7.10", "Refusing to send credentials without TLS")
}

// Agent runs delivery workers that lease work from the queue and deliver
// it. Build it with NewAgent.
type Agent struct {
	cfg  Config
	q    Queue
	pool *pool
	hops *HopCache
	log  *slog.Logger
	// routes is the routing table in force (Config.Routes, then
	// SetRoutes).
	routes atomic.Pointer[route.Table]
	// backlog holds outcomes the queue could not record yet.
	backlog *backlog
}

// NewAgent returns an agent delivering q's work with cfg.
func NewAgent(q Queue, cfg Config) (*Agent, error) {
	if cfg.Routes == nil {
		return nil, errors.New("deliver: Config.Routes is required")
	}
	if q == nil {
		return nil, errors.New("deliver: a queue is required")
	}
	if cfg.HeloName == "" {
		cfg.HeloName = "localhost"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.MaxConnsPerHop <= 0 {
		cfg.MaxConnsPerHop = 10
	}
	if cfg.MaxMessagesPerConn <= 0 {
		cfg.MaxMessagesPerConn = 100
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Second
	}
	if cfg.MaxTargets <= 0 {
		cfg.MaxTargets = 5
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 30 * time.Second
	}
	cfg.Timeouts = cfg.Timeouts.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hops == nil {
		cfg.Hops = NewHopCache(cfg.Logger)
	}
	a := &Agent{cfg: cfg, q: q, pool: newPool(cfg.IdleTimeout), hops: cfg.Hops, log: cfg.Logger, backlog: newBacklog(cfg.Logger, q)}
	a.routes.Store(cfg.Routes)
	return a, nil
}

// Hops returns the hop-capability cache.
func (a *Agent) Hops() *HopCache { return a.hops }

// Run runs the workers until ctx ends, then lets deliveries in progress
// finish (for at most ShutdownGrace) and closes idle connections.
func (a *Agent) Run(ctx context.Context) error {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(a.cfg.ShutdownGrace, cancel)
		context.AfterFunc(dctx, func() { t.Stop() })
	})
	defer stop()
	var wg sync.WaitGroup
	for range a.cfg.Workers {
		wg.Go(func() { a.worker(ctx, dctx) })
	}
	wg.Wait()
	a.backlog.abandon()
	a.pool.closeAll()
	return nil
}

// Close ends every idle connection with QUIT.
func (a *Agent) Close() { a.pool.closeAll() }

// worker leases with ctx and delivers with dctx, which outlives ctx by the
// shutdown grace time. Outcomes the queue could not record are written
// first, before a lease is released or a new one taken (see backlog).
func (a *Agent) worker(ctx, dctx context.Context) {
	for ctx.Err() == nil {
		if !a.backlog.flush(ctx, a.record) {
			return
		}
		l, err := a.q.Lease(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Error("deliver: lease failed", "err", err)
		}
		if err != nil || l == nil {
			select {
			case <-ctx.Done():
			case <-time.After(a.cfg.PollInterval):
			}
			continue
		}
		a.DeliverLease(dctx, l)
		a.backlog.flush(dctx, a.record)
		a.q.Release(l)
	}
}

// session is a connection in use by one lease, with its pool key.
type session struct {
	c   *Client
	key string
	// relaxed is set when the connection was opened with the TLS policy
	// waived (TLS-Required: No); only such messages may use it.
	relaxed bool
}

// DeliverLease delivers every message of a lease and reports each
// recipient with Update. It does not Release the lease.
func (a *Agent) DeliverLease(ctx context.Context, l *queue.Lease) {
	table := a.routes.Load()
	rt := table.Lookup(l.Hop)
	targets, err := table.Resolve(ctx, rt, l.Hop)
	if err != nil {
		rep := route.ReplyDNSFailure()
		var re *route.Error
		if errors.As(err, &re) {
			rep = re.Reply
		}
		a.log.Info("deliver: routing failed", "hop", l.Hop, "route", rt.String(), "err", err)
		for _, it := range l.Items {
			a.reportAll(ctx, it, classify(rep), rep, "none", "")
		}
		return
	}
	if len(targets) > a.cfg.MaxTargets {
		targets = targets[:a.cfg.MaxTargets]
	}
	pols := a.policies(ctx, rt, l.Hop, targets)
	limit := a.messageLimit(rt)
	var s *session
	defer func() { a.finish(s, limit) }()
	var down *smtp.Reply // set when no target could be reached
	for _, it := range l.Items {
		if ctx.Err() != nil || a.backlog.paused() {
			// Unreported recipients return to the queue on Release. While
			// outcomes wait to be recorded nothing more is sent.
			return
		}
		if !a.q.Renew(l) {
			a.log.Warn("deliver: lease taken back; leaving its remaining messages to the queue", "hop", l.Hop)
			return
		}
		if down != nil {
			// The hop is unreachable now: defer the rest of the lease
			// rather than wait for every timeout again.
			a.reportAll(ctx, it, queue.Deferred, *down, "none", "")
			continue
		}
		s, down = a.deliverItem(ctx, rt, targets, pols, s, it)
	}
}

// messageLimit is how many messages one connection of route rt carries.
func (a *Agent) messageLimit(rt route.Route) int {
	if rt.Policy.MaxMessagesPerConnection > 0 {
		return rt.Policy.MaxMessagesPerConnection
	}
	return a.cfg.MaxMessagesPerConn
}

// finish returns a session's connection to the pool, or ends it when it is
// broken or has carried limit messages.
func (a *Agent) finish(s *session, limit int) {
	if s == nil {
		return
	}
	switch {
	case s.c.Broken():
		_ = s.c.Close()
	case s.c.Messages() >= limit:
		s.c.quitQuietly()
	default:
		a.pool.put(s.key, s.c)
		return
	}
	a.pool.drop(s.key)
}

// deliverItem delivers one message, reusing s when it can, and returns the
// session to use for the next message (nil when none is open), and the
// reply when no target could be reached.
func (a *Agent) deliverItem(ctx context.Context, rt route.Route, targets []route.Target, pols []tlspolicy.HostPolicy, s *session, it queue.Item) (*session, *smtp.Reply) {
	scan, err := a.scan(it)
	if err != nil {
		a.log.Error("deliver: reading queued message", "id", it.Env.ID, "err", err)
		a.reportAll(ctx, it, queue.Deferred, ReplyLocalReadError(), "none", "")
		return s, nil
	}
	limit := a.messageLimit(rt)
	need := needOf(it.Env)
	if s != nil && (s.c.Broken() || s.c.Messages() >= limit || !need.canUse(s)) {
		a.finish(s, limit)
		s = nil
	}
	if s != nil && s.c.NeedsReset() {
		if err := s.c.Reset(ctx); err != nil {
			a.finish(s, limit)
			s = nil
		}
	}
	if s == nil {
		var rep smtp.Reply
		s, rep = a.acquire(ctx, rt, targets, pols, need)
		if s == nil {
			if rep.Permanent() {
				// REQUIRETLS with no acceptable hop: fail now
				// (RFC 8689 §4.2.1), the next message may differ.
				a.reportAll(ctx, it, queue.Failed, rep, "none", "")
				return nil, nil
			}
			a.reportAll(ctx, it, queue.Deferred, rep, "none", "")
			return nil, &rep
		}
	}
	relay := s.c.target.String()
	it = a.refuseUTF8LocalParts(ctx, it, s.c.Extensions(), relay)
	if len(it.Rcpts) == 0 {
		return s, nil
	}
	plan, rep := Plan(NeedsOf(it.Env, it.Rcpts, scan, it.Size), s.c.Extensions(), rt.Policy)
	if rep == nil && plan.Convert && a.cfg.Converter == nil {
		rep = reply(ReplyNoConverter())
	}
	if rep != nil {
		a.reportAll(ctx, it, classify(*rep), *rep, relay, plan.String())
		return s, nil
	}
	body, err := it.Body()
	if err != nil {
		a.log.Error("deliver: opening queued message", "id", it.Env.ID, "err", err)
		a.reportAll(ctx, it, queue.Deferred, ReplyLocalReadError(), relay, plan.String())
		return s, nil
	}
	msg := Message{Env: it.Env, Rcpts: it.Rcpts, Body: body}
	var sign signFunc
	var signed *SignResult
	if a.cfg.Signer != nil {
		req := SignRequest{Env: it.Env, Policy: rt.Policy, Signed: scan.DKIMSigned}
		sign = func(open func() io.Reader, changed bool) (SignResult, error) {
			req.Converted = changed
			res, err := a.cfg.Signer.Sign(req, open)
			signed = &res
			return res, err
		}
	}
	if needsPreparing(plan, sign) {
		// Converted or signed before MAIL FROM, so that SIZE= is exact
		// and a hop's limit is checked against what it would get.
		content, err := s.c.prepare(body, plan, a.cfg.Converter, sign)
		if err == nil {
			defer content.close()
			if content.sevenBit {
				plan = plan.WithSevenBitContent()
			}
			plan, rep = plan.WithContentSize(it.Size, content.converted, content.size, s.c.Extensions().Size())
		}
		if err != nil || rep != nil {
			_ = body.Close()
			if err != nil {
				a.log.Info("deliver: content not prepared", "id", it.Env.ID, "relay", relay, "err", err)
				rep = reply(contentReply(err, s.c.Extensions().Has("SMTPUTF8")))
			}
			a.logContent(it.Env.ID, relay, s.c, signed)
			a.reportAll(ctx, it, classify(*rep), *rep, relay, plan.String())
			return s, nil
		}
		msg.content = content
	}
	replies, err := s.c.Send(ctx, msg, plan, a.cfg.Converter)
	_ = body.Close()
	if err != nil {
		a.log.Info("deliver: session ended", "id", it.Env.ID, "relay", relay, "err", err)
	}
	a.logContent(it.Env.ID, relay, s.c, signed)
	if plan.RelayedDSN && a.cfg.OnRelayed != nil {
		// Before the outcomes are recorded: the last one finishes the
		// message, and the report returns its headers.
		var relayed []int
		var relayedReply smtp.Reply
		for i, idx := range it.Rcpts {
			if classify(replies[i]) == queue.Sent {
				relayed, relayedReply = append(relayed, idx), replies[i]
			}
		}
		if len(relayed) > 0 {
			a.cfg.OnRelayed(it.Env, relayed, relay, relayedReply, it.Body)
		}
	}
	// Record every recipient's outcome now, before QUIT or the next
	// message on this connection, in one commit.
	outs := make([]outcome, len(it.Rcpts))
	for i, idx := range it.Rcpts {
		outs[i] = outcome{idx, classify(replies[i]), replies[i]}
	}
	a.reportOutcomes(ctx, it, outs, relay, plan.String(), s.c)
	if s.c.Broken() {
		a.finish(s, limit)
		return nil, nil
	}
	return s, nil
}

// logContent writes what was done to the content of a transfer: the
// conversion's summary and the signatures added.
func (a *Agent) logContent(id, relay string, c *Client, signed *SignResult) {
	if conv, ok := c.LastConversion(); ok {
		a.log.Info(fmt.Sprintf("%s: converted for %s (%s)", id, relay, conv.Summary),
			"event", "converted", "id", id, "relay", relay, "summary", conv.Summary, "dkim_broken", conv.DKIMSigned)
	}
	if signed != nil && signed.Summary != "" {
		a.log.Info(fmt.Sprintf("%s: %s for %s", id, signed.Summary, relay),
			"event", "signed", "id", id, "relay", relay, "summary", signed.Summary)
	}
}

// scan returns a queued message's content needs: the scan kept with the
// message at receipt, or, for a message stored without one, a scan of its
// content read now.
func (a *Agent) scan(it queue.Item) (downgrade.Needs, error) {
	if it.Env.ContentScan != nil {
		return *it.Env.ContentScan, nil
	}
	body, err := it.Body()
	if err != nil {
		return downgrade.Needs{}, fmt.Errorf("opening %s: %w", it.Env.ID, err)
	}
	defer body.Close()
	scan, err := downgrade.Scan(body)
	if err != nil {
		return downgrade.Needs{}, fmt.Errorf("scanning %s: %w", it.Env.ID, err)
	}
	return scan, nil
}

// refuseUTF8LocalParts fails, at once, the recipients whose local part is
// not ASCII when the hop lacks SMTPUTF8 and the sender's is ASCII (RFC 6531
// §3.2: no downgrade of a local part exists), and returns the item with the
// others, which may still go with A-labelled domains. When the sender's
// local part is not ASCII the plan refuses the whole message.
func (a *Agent) refuseUTF8LocalParts(ctx context.Context, it queue.Item, ext smtp.Extensions, relay string) queue.Item {
	if ext.Has("SMTPUTF8") || !isASCII(it.Env.From.LocalPart) {
		return it
	}
	var keep []int
	for _, idx := range it.Rcpts {
		if idx >= 0 && idx < len(it.Env.Rcpts) && !isASCII(it.Env.Rcpts[idx].Addr.LocalPart) {
			a.report(ctx, it, idx, queue.Failed, ReplyNonASCIIAddress(), relay, "")
			continue
		}
		keep = append(keep, idx)
	}
	it.Rcpts = keep
	return it
}

// classify maps a reply to a recipient state: 2xx sent, 4xx deferred, 5xx
// failed; anything else (no reply) deferred.
func classify(r smtp.Reply) queue.RcptState {
	switch {
	case r.Code >= 200 && r.Code < 300:
		return queue.Sent
	case r.Permanent():
		return queue.Failed
	}
	return queue.Deferred
}
