package dsn

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Notifier defaults.
const (
	// DefaultDelayWarning is how old a message must be before a
	// deferral produces a delay report (Postfix's delay_warning_time is
	// off by default; Sendmail warns after 4 hours).
	DefaultDelayWarning = 4 * time.Hour
	// DefaultLifetime is the queue's default message lifetime, used for
	// Will-Retry-Until when NotifierConfig.Lifetime is zero.
	DefaultLifetime   = 120 * time.Hour
	defaultPutTimeout = time.Minute
	// maxWarned bounds the set of messages already warned about; past it,
	// entries older than the lifetime are dropped.
	maxWarned = 10000
)

// PutFunc stores a message in the queue; queue.Queue.Put has this type. An
// empty env.ID asks the queue to assign one.
type PutFunc func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error)

// NotifierConfig configures a Notifier. Zero fields take defaults.
type NotifierConfig struct {
	// ReportingMTA is this MTA's host name (Reporting-MTA, From).
	// Required.
	ReportingMTA string
	// Postmaster, when set, is the address ("local@domain") that receives
	// failure reports about messages with the null reverse path (reports
	// that could not be delivered). When empty those are logged and
	// dropped.
	Postmaster string
	// MaxReturnSize caps the size of a message returned in full in a
	// failure report (default DefaultMaxReturnSize; negative: headers
	// only).
	MaxReturnSize int64
	// DelayWarning is how long after arrival a deferred recipient gets a
	// delay report (default DefaultDelayWarning); negative disables delay
	// reports.
	DelayWarning time.Duration
	// Lifetime is the queue's message lifetime, used for
	// Will-Retry-Until (default DefaultLifetime). Set it to the queue's
	// Config.Lifetime.
	Lifetime time.Duration
	// PutTimeout bounds one PutFunc call (default one minute).
	PutTimeout time.Duration
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Logger receives one "dsn" line per report queued and one
	// "dsn-suppressed" line per report not sent (default slog.Default()).
	Logger *slog.Logger
	// NewToken returns a string unique to each success report for its
	// Message-ID (default: random hex and a counter). Tests fix it.
	NewToken func() string
}

// Notifier turns queue events into reports and queues them with the null
// reverse path. It applies the NOTIFY rules of RFC 3461 §4.1, never reports
// on a message whose reverse path is null (RFC 3461 §6.2; such a failure
// goes to the postmaster when one is configured), sends at most one delay
// report per message, and makes one report per message and kind. It is safe
// for concurrent use.
type Notifier struct {
	cfg        NotifierConfig
	postmaster smtp.Path
	put        PutFunc
	log        *slog.Logger
	seq        atomic.Uint64

	mu     sync.Mutex
	warned map[string]time.Time // message ID → when its delay report was made
}

// NewNotifier returns a Notifier that queues reports with put.
func NewNotifier(cfg NotifierConfig, put PutFunc) (*Notifier, error) {
	if put == nil {
		return nil, fmt.Errorf("dsn: NewNotifier needs a PutFunc")
	}
	if !isHostName(cfg.ReportingMTA) {
		return nil, fmt.Errorf("dsn: reporting MTA name %q is not a host name", cfg.ReportingMTA)
	}
	n := &Notifier{put: put, warned: make(map[string]time.Time)}
	if cfg.Postmaster != "" {
		p, err := smtp.ParseAddress(cfg.Postmaster)
		if err != nil {
			return nil, fmt.Errorf("dsn: postmaster address %q: %w", cfg.Postmaster, err)
		}
		n.postmaster = p
	}
	if cfg.MaxReturnSize == 0 {
		cfg.MaxReturnSize = DefaultMaxReturnSize
	}
	if cfg.DelayWarning == 0 {
		cfg.DelayWarning = DefaultDelayWarning
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.PutTimeout <= 0 {
		cfg.PutTimeout = defaultPutTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NewToken == nil {
		var salt [4]byte
		_, _ = rand.Read(salt[:]) // never fails (crypto/rand docs)
		prefix := hex.EncodeToString(salt[:])
		cfg.NewToken = func() string { return fmt.Sprintf("%s%d", prefix, n.seq.Add(1)) }
	}
	n.cfg, n.log = cfg, cfg.Logger
	return n, nil
}

// Requested reports whether a recipient with NOTIFY conditions notify gets a
// report of kind k (RFC 3461 §4.1): never with NEVER; a failure or delay
// report when NOTIFY was not given or names FAILURE or DELAY; a success
// report (delivered, relayed) only when it names SUCCESS.
func Requested(notify smtp.Notify, k Kind) bool {
	if notify&smtp.NotifyNever != 0 {
		return false
	}
	switch k {
	case Failed:
		return notify == 0 || notify&smtp.NotifyFailure != 0
	case Delayed:
		return notify == 0 || notify&smtp.NotifyDelay != 0
	case Delivered, Relayed:
		return notify&smtp.NotifySuccess != 0
	}
	return false
}

// OnEvent handles a queue event; use it as queue.Config.OnEvent. For
// EventFinished it sends one failure report covering every failed recipient
// that asked for one; for EventDelayed, once the message is older than
// DelayWarning, one delay report per message covering the deferred
// recipients in the event.
func (n *Notifier) OnEvent(ev queue.Event) {
	if ev.Env == nil {
		n.log.Error("dsn: queue event without envelope", "id", ev.ID)
		return
	}
	switch ev.Kind {
	case queue.EventFinished:
		n.forget(ev.ID)
		n.finished(ev)
	case queue.EventDelayed:
		n.delayed(ev)
	}
}

// finished sends the failure report of a finished message.
func (n *Notifier) finished(ev queue.Event) {
	var rcpts []Recipient
	var never []string
	for _, st := range ev.Rcpts {
		if st.State != queue.Failed {
			continue
		}
		if !Requested(rcptNotify(ev.Env, st.Index), Failed) {
			never = append(never, st.Addr.Address())
			continue
		}
		rcpts = append(rcpts, fromStatus(st))
	}
	if len(never) > 0 {
		n.suppressed(ev.ID, Failed, never, "NOTIFY excludes failure")
	}
	if len(rcpts) == 0 {
		return
	}
	var extra []any
	if ev.Recovered {
		extra = append(extra, "recovered", true)
	}
	if ev.Retried {
		extra = append(extra, "retried", true)
	}
	err := n.send(n.put, ev.ID, ev.Env, Failed, rcpts, ev.Body, extra...)
	var qe *queueError
	if !errors.As(err, &qe) {
		return // queued, or never to be sent (logged)
	}
	if ev.Keep == nil {
		n.log.Error("dsn-suppressed", "id", ev.ID, "kind", Failed.String(), "rcpts", strings.Join(addrs(rcpts), ","), "reason", "cannot queue report", "err", qe.err)
		return
	}
	// The queue keeps the message, its outcomes recorded, and hands it
	// back later: the report is owed, not lost. Logged once per message.
	ev.Keep(qe.err)
	if !ev.Retried {
		n.log.Warn("dsn-deferred", "id", ev.ID, "kind", Failed.String(), "rcpts", strings.Join(addrs(rcpts), ","),
			"reason", "cannot queue report; the message is kept until it can", "err", qe.err)
	}
}

// queueError is a report that was built but could not be queued: trying
// again later may succeed.
type queueError struct{ err error }

func (e *queueError) Error() string { return "dsn: cannot queue report: " + e.err.Error() }
func (e *queueError) Unwrap() error { return e.err }

// errNotSent is a report that was not sent on purpose (the rules say so)
// or cannot be built; it is logged where it happens.
var errNotSent = errors.New("dsn: report not sent")

// Relayed sends a report with Action relayed for the recipients (indexes into
// env.Rcpts) that asked for NOTIFY=SUCCESS and were passed to remoteMTA,
// a next hop without the DSN extension (RFC 3461 §5.2.2). reply is the
// hop's reply to the message; body opens the original (may be nil).
func (n *Notifier) Relayed(env *smtp.Envelope, rcpts []int, remoteMTA string, reply smtp.Reply, body func() (io.ReadCloser, error)) {
	n.success(Relayed, env, rcpts, remoteMTA, reply, body)
}

// Delivered sends a report with Action delivered for the recipients that
// asked for NOTIFY=SUCCESS, for a final delivery (RFC 3461 §5.2.3). The
// arguments are those of Relayed.
func (n *Notifier) Delivered(env *smtp.Envelope, rcpts []int, remoteMTA string, reply smtp.Reply, body func() (io.ReadCloser, error)) {
	n.success(Delivered, env, rcpts, remoteMTA, reply, body)
}

// success sends a delivered or relayed report.
func (n *Notifier) success(k Kind, env *smtp.Envelope, idx []int, remoteMTA string, reply smtp.Reply, body func() (io.ReadCloser, error)) {
	if env == nil {
		return
	}
	now := n.cfg.Clock()
	var rcpts []Recipient
	for _, i := range idx {
		if i < 0 || i >= len(env.Rcpts) || !Requested(env.Rcpts[i].Notify, k) {
			continue
		}
		rcpts = append(rcpts, Recipient{Index: i, Addr: env.Rcpts[i].Addr, Reply: reply, RemoteMTA: remoteMTA, LastAttempt: now})
	}
	if len(rcpts) == 0 {
		return // nobody asked for SUCCESS: nothing to suppress
	}
	if env.From.IsNull() {
		n.suppressed(env.ID, k, addrs(rcpts), "null reverse path")
		return
	}
	if err := n.send(n.put, env.ID, env, k, rcpts, body); err != nil {
		n.logNotQueued(env.ID, k, rcpts, err)
	}
}

// logNotQueued logs a report that was built but could not be queued (the
// other failures of send are logged by send).
func (n *Notifier) logNotQueued(id string, k Kind, rcpts []Recipient, err error) {
	var qe *queueError
	if errors.As(err, &qe) {
		n.log.Error("dsn-suppressed", "id", id, "kind", k.String(), "rcpts", strings.Join(addrs(rcpts), ","), "reason", "cannot queue report", "err", qe.err)
	}
}

// send builds one report and queues it with put. It returns nil once it is
// queued, errNotSent (logged) when it is not to be sent or cannot be
// built, and a *queueError (not logged) when the queue refused it. On a
// full spool (queue.ErrSpoolFull) a report that returns the whole original
// is tried again with its header alone (RFC 3461 §4.3 RET=HDRS), which a
// nearly full spool is likelier to take. extra are attributes for the
// "dsn" log line.
func (n *Notifier) send(put PutFunc, id string, env *smtp.Envelope, k Kind, rcpts []Recipient, body func() (io.ReadCloser, error), extra ...any) error {
	to := env.From
	copyToPostmaster := false
	if to.IsNull() {
		if k != Failed || n.postmaster.IsNull() {
			n.suppressed(id, k, addrs(rcpts), "null reverse path")
			return errNotSent
		}
		to, copyToPostmaster = n.postmaster, true
	}
	now := n.cfg.Clock()
	r := Report{
		Kind:          k,
		ReportingMTA:  n.cfg.ReportingMTA,
		Env:           env,
		To:            to,
		Rcpts:         rcpts,
		Date:          now,
		MessageID:     n.messageID(id, k),
		MaxReturnSize: n.cfg.MaxReturnSize,
	}
	msg, err := n.build(r, id, body)
	if err != nil {
		n.log.Error("dsn-suppressed", "id", id, "kind", k.String(), "rcpts", strings.Join(addrs(rcpts), ","), "reason", "cannot build report", "err", err)
		return errNotSent
	}
	newID, err := n.queue(put, env, to, copyToPostmaster, msg)
	if errors.Is(err, queue.ErrSpoolFull) && r.MaxReturnSize >= 0 && body != nil {
		r.MaxReturnSize = -1
		if short, berr := n.build(r, id, body); berr == nil && len(short) < len(msg) {
			if newID, err = n.queue(put, env, to, copyToPostmaster, short); err == nil {
				extra = append(extra, "returned", "headers (spool full)")
			}
		}
	}
	if err != nil {
		return &queueError{err}
	}
	attrs := []any{"id", id, "dsn_id", newID, "kind", k.String(), "to", to.Address(), "rcpts", strings.Join(addrs(rcpts), ",")}
	if copyToPostmaster {
		attrs = append(attrs, "postmaster_copy", true)
	}
	n.log.Info("dsn", append(attrs, extra...)...)
	return nil
}

// queue stores report msg about the message of envelope env for to with put,
// with the null reverse path, and returns the report's queue ID.
func (n *Notifier) queue(put PutFunc, env *smtp.Envelope, to smtp.Path, copyToPostmaster bool, msg []byte) (string, error) {
	now := n.cfg.Clock()
	out := &smtp.Envelope{
		From:    smtp.Path{},
		Rcpts:   []smtp.Recipient{{Addr: to}},
		Arrival: now,
		Client:  smtp.ClientInfo{Helo: n.cfg.ReportingMTA, Protocol: "local"},
	}
	if copyToPostmaster {
		// A copy for the postmaster must not produce another report if
		// it fails itself.
		out.Rcpts[0].Notify = smtp.NotifyNever
	}
	if hasEightBit(msg) {
		out.Body = smtp.Body8BitMIME
		out.SMTPUTF8 = env.SMTPUTF8
	}
	if !to.IsASCII() {
		out.SMTPUTF8 = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.PutTimeout)
	defer cancel()
	return put(ctx, out, bytes.NewReader(msg))
}

// build makes the report, returning the original when it can be opened; when
// it cannot, the report goes out without it.
func (n *Notifier) build(r Report, id string, body func() (io.ReadCloser, error)) ([]byte, error) {
	if body == nil {
		return Build(r, nil)
	}
	rc, err := body()
	if err != nil {
		n.log.Warn("dsn: cannot open original message; report sent without it", "id", id, "err", err)
		return Build(r, nil)
	}
	defer rc.Close()
	msg, err := Build(r, rc)
	if err != nil && r.Kind.valid() && r.Env != nil {
		n.log.Warn("dsn: cannot read original message; report sent without it", "id", id, "err", err)
		return Build(r, nil)
	}
	return msg, err
}

// messageID returns the report's Message-ID (without angle brackets). A
// message has at most one failure and one delay report, so those are named
// after the queue ID and kind alone: a report sent again after a crash (an
// EventFinished delivered again at start, Event.Recovered) then carries the
// same Message-ID and mail readers show it once. Success reports, which a
// message may get from several next hops, add a unique token.
func (n *Notifier) messageID(id string, k Kind) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		if c := id[i]; c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			b.WriteByte(c)
		}
	}
	if b.Len() > 0 && (k == Failed || k == Delayed) {
		return fmt.Sprintf("%s.%s@%s", b.String(), k.String(), n.cfg.ReportingMTA)
	}
	if b.Len() == 0 {
		b.WriteString("msg")
	}
	return fmt.Sprintf("%s.%s.%s@%s", b.String(), k.String(), n.cfg.NewToken(), n.cfg.ReportingMTA)
}

// suppressed logs a report that is not sent and why.
func (n *Notifier) suppressed(id string, k Kind, rcpts []string, reason string) {
	n.log.Info("dsn-suppressed", "id", id, "kind", k.String(), "rcpts", strings.Join(rcpts, ","), "reason", reason)
}

// rcptNotify returns the NOTIFY conditions of recipient i of env.
func rcptNotify(env *smtp.Envelope, i int) smtp.Notify {
	if i < 0 || i >= len(env.Rcpts) {
		return 0
	}
	return env.Rcpts[i].Notify
}

// fromStatus converts a queue recipient status. An expired recipient keeps
// the queue's expiry reply (4.4.7, whose text quotes the last reply), which
// is the only record of the final attempt's reply; its Remote-MTA and
// Last-Attempt-Date come from the latest attempt that reached a next hop,
// since expiry found at lease time is no attempt at all.
func fromStatus(st queue.RcptStatus) Recipient {
	rc := Recipient{Index: st.Index, Addr: st.Addr, Reply: st.LastReply, RemoteMTA: st.RemoteMTA,
		LastAttempt: st.LastAttempt, Expired: st.Expired}
	if st.Expired && len(st.History) > 0 {
		rc.RemoteMTA, rc.LastAttempt = "", time.Time{}
		for i := len(st.History) - 1; i >= 0; i-- {
			if a := st.History[i]; a.RemoteMTA != "" {
				rc.RemoteMTA, rc.LastAttempt = a.RemoteMTA, a.At
				break
			}
		}
	}
	return rc
}

// addrs lists the recipients' addresses.
func addrs(rcpts []Recipient) []string {
	s := make([]string, len(rcpts))
	for i, r := range rcpts {
		s[i] = r.Addr.Address()
	}
	return s
}

// statusAddrs lists the addresses of queue recipient statuses.
func statusAddrs(rcpts []queue.RcptStatus) []string {
	s := make([]string, len(rcpts))
	for i, r := range rcpts {
		s[i] = r.Addr.Address()
	}
	return s
}
