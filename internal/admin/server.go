package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the admin API handler.
type Options struct {
	// Queue is the running queue, of either backend. Required.
	Queue queue.Store
	// Hops is the delivery agent's hop-capability cache (Agent.Hops());
	// nil serves an empty /hops and no transfer plans.
	Hops *deliver.HopCache
	// Routes is the routing table delivery uses; with Hops it gives
	// GET /queue/{id} the transfer plan each next hop would get now.
	Routes *route.Table
	// RouteTable, when set, returns the routing table in force and takes
	// precedence over Routes (the table changes on a configuration
	// reload).
	RouteTable func() *route.Table
	// Transcripts serves GET and POST /transcripts; nil: those answer
	// 404.
	Transcripts TranscriptSwitch
	// Metrics serves /metrics; New also registers the queue's gauges with
	// it. nil: /metrics answers 404.
	Metrics *Metrics
	// Logger receives one "admin" line per queue operation; nil:
	// slog.Default().
	Logger *slog.Logger
	// Spool is the queue's spool directory; /healthz checks that a file
	// can be created and synced in it. "" skips the check.
	Spool string
	// Listeners reports whether the SMTP listeners are up (nil error);
	// /healthz includes it. nil skips the check.
	Listeners func() error
	// Ready reports whether the server has finished starting and accepts
	// mail; /readyz answers 503 with its error. nil: always ready.
	Ready func() error
}

// planTimeout bounds the route resolution of one GET /queue/{id}.
const planTimeout = 5 * time.Second

// server holds the handler's state.
type server struct {
	opts Options
	log  *slog.Logger
}

// New returns the admin API handler (see docs/admin-api.md for every
// endpoint). The caller serves it on a listener from Listen.
func New(opts Options) http.Handler {
	s := &server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if opts.Metrics != nil && opts.Queue != nil {
		opts.Metrics.WatchQueue(opts.Queue)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /queue", s.list)
	mux.HandleFunc("GET /queue/{id}", s.show)
	mux.HandleFunc("POST /queue/retry", s.retryMany)
	mux.HandleFunc("POST /queue/{id}/{action}", s.act)
	mux.HandleFunc("GET /hops", s.hops)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if opts.Transcripts != nil {
		mux.HandleFunc("GET /transcripts", s.getTranscripts)
		mux.HandleFunc("POST /transcripts", s.setTranscripts)
	}
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Metrics.Registry(), promhttp.HandlerOpts{}))
	}
	return mux
}

// routes returns the routing table in force, or nil.
func (s *server) routes() *route.Table {
	if s.opts.RouteTable != nil {
		return s.opts.RouteTable()
	}
	return s.opts.Routes
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError writes an ErrorBody, choosing the status from err.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, queue.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, queue.ErrAmbiguous):
		code = http.StatusConflict
	case errors.Is(err, queue.ErrClosed):
		code = http.StatusServiceUnavailable
	case errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	}
	writeJSON(w, code, ErrorBody{Error: err.Error()})
}

// errBadRequest marks errors in the request itself.
var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// filterOf reads the listing filters from the query string.
func filterOf(r *http.Request) (queue.Filter, error) {
	q := r.URL.Query()
	f := queue.Filter{Hop: q.Get("hop"), Sender: q.Get("sender"), Recipient: q.Get("rcpt")}
	if s := q.Get("older"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return f, badRequest("older=%q: want a duration such as 90m or 1h", s)
		}
		f.MinAge = d
	}
	switch s := q.Get("state"); s {
	case "", "any":
	case "active":
		f.State = queue.ActiveState
	case "deferred":
		f.State = queue.DeferredState
	case "held":
		f.State = queue.HeldState
	default:
		return f, badRequest("state=%q: want active, deferred or held", s)
	}
	return f, nil
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	f, err := filterOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []Summary{}
	err = s.opts.Queue.Walk(f, func(m *queue.MessageInfo) bool {
		out = append(out, summaryOf(m))
		return r.Context().Err() == nil
	})
	if err != nil {
		writeError(w, fmt.Errorf("listing the queue: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) show(w http.ResponseWriter, r *http.Request) {
	id, err := s.opts.Queue.Resolve(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := s.opts.Queue.Show(id)
	if err != nil {
		writeError(w, err)
		return
	}
	msg := messageOf(info)
	ctx, cancel := context.WithTimeout(r.Context(), planTimeout)
	defer cancel()
	msg.Plans = s.plans(ctx, info)
	if b := r.URL.Query().Get("body"); b == "1" || b == "true" {
		rc, err := info.Body()
		if err != nil {
			writeError(w, fmt.Errorf("opening %s: %w", id, err))
			return
		}
		msg.Content, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			writeError(w, fmt.Errorf("reading %s: %w", id, err))
			return
		}
	}
	writeJSON(w, http.StatusOK, msg)
}

// actions maps the POST verbs to queue operations.
func (s *server) action(name string) func(context.Context, string) error {
	q := s.opts.Queue
	switch name {
	case "hold":
		return q.Hold
	case "release":
		return q.Unhold
	case "retry":
		return q.RetryNow
	case "delete":
		return q.Delete
	case "bounce":
		return q.BounceNow
	}
	return nil
}

func (s *server) act(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("action")
	op := s.action(name)
	if op == nil {
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: fmt.Sprintf("unknown action %q: want hold, release, retry, delete or bounce", name)})
		return
	}
	id, err := s.opts.Queue.Resolve(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := op(r.Context(), id); err != nil {
		writeError(w, fmt.Errorf("%s %s: %w", name, id, err))
		return
	}
	s.log.Info("admin", "id", id, "action", name, "client", r.RemoteAddr)
	writeJSON(w, http.StatusOK, ActionResult{ID: id, Action: name})
}

func (s *server) retryMany(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hop, all := q.Get("hop"), q.Get("all")
	var n int
	var err error
	switch {
	case hop != "":
		n, err = s.opts.Queue.RetryHop(r.Context(), hop)
	case all == "1" || all == "true":
		n, err = s.retryAll(r.Context())
	default:
		err = badRequest("give hop=HOP or all=1")
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("admin", "action", "retry", "hop", hop, "messages", n, "client", r.RemoteAddr)
	writeJSON(w, http.StatusOK, RetryResult{Messages: n})
}

// retryAll makes every queued message that is not held due at once.
func (s *server) retryAll(ctx context.Context) (int, error) {
	var ids []string
	err := s.opts.Queue.Walk(queue.Filter{}, func(m *queue.MessageInfo) bool {
		if !m.Held {
			ids = append(ids, m.ID)
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("listing the queue: %w", err)
	}
	n := 0
	for _, id := range ids {
		err := s.opts.Queue.RetryNow(ctx, id)
		switch {
		case err == nil:
			n++
		case errors.Is(err, queue.ErrNotFound):
			// finished meanwhile
		default:
			return n, fmt.Errorf("retry %s: %w", id, err)
		}
	}
	return n, nil
}

func (s *server) hops(w http.ResponseWriter, _ *http.Request) {
	out := []deliver.HopInfo{}
	if s.opts.Hops != nil {
		out = append(out, s.opts.Hops.All()...)
	}
	writeJSON(w, http.StatusOK, out)
}

// Health is the body of /healthz and /readyz.
type Health struct {
	// Status is "ok" or "failing".
	Status string `json:"status"`
	// Checks maps each check to "ok" or its error.
	Checks map[string]string `json:"checks"`
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	h := Health{Status: "ok", Checks: map[string]string{}}
	check := func(name string, err error) {
		if err != nil {
			h.Status, h.Checks[name] = "failing", err.Error()
			return
		}
		h.Checks[name] = "ok"
	}
	if s.opts.Spool != "" {
		check("queue_writable", spoolWritable(s.opts.Spool))
	}
	if s.opts.Listeners != nil {
		check("listeners", s.opts.Listeners())
	}
	code := http.StatusOK
	if h.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	h := Health{Status: "ok", Checks: map[string]string{"ready": "ok"}}
	code := http.StatusOK
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			h.Status, h.Checks["ready"], code = "failing", err.Error(), http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, h)
}

// spoolWritable creates, writes, syncs and removes a file in dir: the
// queue's own writes need exactly that.
func spoolWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".healthz-*")
	if err != nil {
		return fmt.Errorf("creating a file in %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write([]byte("ok\n")); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", f.Name(), err)
	}
	return f.Close()
}
