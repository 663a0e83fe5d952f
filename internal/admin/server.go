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
	"path/filepath"
	"strings"
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
	// mail; /readyz answers 503 with its error. nil: always ready. /readyz
	// also fails while Queue.Writable reports an error.
	Ready func() error
	// Offline says no server runs on the queue ("ferry queue" opened the
	// spool itself): retry and bounce, which need delivery and DSNs,
	// answer 409.
	Offline bool
}

// SpoolHeader is the response header naming the spool the answering
// server serves, so a client can check it reached the queue it meant.
const SpoolHeader = "Ferry-Spool"

// MinChangePrefix is the shortest ID prefix a state-changing request may
// name a message by (the full ID is always accepted): queue IDs sort by
// time, so a short prefix can match a message the operator never saw.
const MinChangePrefix = 8

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
	if opts.Spool == "" {
		return mux
	}
	spool := absPath(opts.Spool)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(SpoolHeader, spool)
		mux.ServeHTTP(w, r)
	})
}

// absPath returns dir made absolute and clean, or dir when that fails.
func absPath(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// NewMetricsHandler returns the handler of the separate metrics listener
// (admin.metrics_listen), open to anyone who reaches it: only GET /metrics,
// GET /healthz and GET /readyz of New's handler h (a load balancer needs
// readiness: a full spool fails it), without the SpoolHeader; everything
// else 404.
func NewMetricsHandler(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.Handle("GET /healthz", h)
	mux.Handle("GET /readyz", h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(noSpoolHeader{w}, r)
	})
}

// noSpoolHeader drops SpoolHeader from a response before it is sent.
type noSpoolHeader struct{ http.ResponseWriter }

func (w noSpoolHeader) WriteHeader(code int) {
	w.Header().Del(SpoolHeader)
	w.ResponseWriter.WriteHeader(code)
}

func (w noSpoolHeader) Write(p []byte) (int, error) {
	w.Header().Del(SpoolHeader)
	return w.ResponseWriter.Write(p)
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
	writeJSON(w, code, ErrorBody{Error: operatorText(err)})
}

// operatorText is err's message for the operator: without the queue
// package's "queue: " prefix, which the client would print after its own
// ("ferry queue: queue: no such message").
func operatorText(err error) string {
	msg := strings.TrimPrefix(err.Error(), "queue: ")
	return strings.ReplaceAll(msg, ": queue: ", ": ")
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
		out = append(out, s.withLastReplies(m))
		return r.Context().Err() == nil
	})
	if err != nil {
		writeError(w, fmt.Errorf("listing the queue: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// withLastReplies summarises m with each recipient's last reply (as mailq
// shows it), read from the history when a recipient has been attempted.
func (s *server) withLastReplies(m *queue.MessageInfo) Summary {
	for _, r := range m.Rcpts {
		if r.Attempts == 0 && r.State != queue.Failed {
			continue
		}
		full, err := s.opts.Queue.Show(m.ID)
		if err != nil {
			break // finished meanwhile: list what Walk saw
		}
		sum := summaryOf(full)
		for i := range sum.Rcpts {
			sum.Rcpts[i].History = nil
		}
		return sum
	}
	return summaryOf(m)
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
	if s.opts.Offline && (name == "retry" || name == "bounce") {
		writeJSON(w, http.StatusConflict, ErrorBody{Error: fmt.Sprintf("%s needs the running server (delivery, reports); start ferry serve", name)})
		return
	}
	id, err := s.resolveForChange(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := op(r.Context(), id); err != nil {
		writeError(w, fmt.Errorf("%s %s: %w", name, id, err))
		return
	}
	s.log.Info("admin", "id", id, "action", name, "client", clientOf(r))
	writeJSON(w, http.StatusOK, ActionResult{ID: id, Action: name})
}

// clientOf names the API client of r for the log: its address over TCP,
// "unix socket" for a peer on the Unix socket (Go names it "@"), "local"
// for a request answered in process (a stopped server's spool).
func clientOf(r *http.Request) string {
	switch r.RemoteAddr {
	case "@":
		return "unix socket"
	case "":
		return "local"
	}
	return r.RemoteAddr
}

// resolveForChange returns the message ID a state-changing request names:
// the full ID, or a unique prefix of at least MinChangePrefix characters.
func (s *server) resolveForChange(prefix string) (string, error) {
	id, err := s.opts.Queue.Resolve(prefix)
	if err != nil {
		return "", err
	}
	if id != prefix && len(prefix) < MinChangePrefix {
		return "", badRequest("ID prefix %q is too short to change a message: give at least %d characters or the full ID", prefix, MinChangePrefix)
	}
	return id, nil
}

// RetryRequest is the JSON body of POST /queue/retry: Hop, or All.
type RetryRequest struct {
	Hop string `json:"hop,omitempty"`
	All bool   `json:"all,omitempty"`
}

func (s *server) retryMany(w http.ResponseWriter, r *http.Request) {
	if s.opts.Offline {
		writeJSON(w, http.StatusConflict, ErrorBody{Error: "retry needs the running server (delivery); start ferry serve"})
		return
	}
	var req RetryRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxPostBody)).Decode(&req); err != nil {
		writeError(w, badRequest("want a JSON body {\"hop\": \"DOMAIN\"} or {\"all\": true}: %v", err))
		return
	}
	hop := req.Hop
	var n int
	var err error
	switch {
	case hop != "" && req.All:
		err = badRequest(`give "hop" or "all", not both`)
	case hop != "":
		n, err = s.opts.Queue.RetryHop(r.Context(), hop)
	case req.All:
		n, err = s.retryAll(r.Context())
	default:
		err = badRequest(`give {"hop": "DOMAIN"} or {"all": true}`)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("admin", "action", "retry", "hop", hop, "messages", n, "client", clientOf(r))
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
	if s.opts.Queue != nil {
		// A spool that cannot store records, or refuses new mail for its
		// reserve, is not ready for more mail.
		h.Checks["queue"] = "ok"
		if err := s.opts.Queue.Writable(); err != nil {
			h.Status, h.Checks["queue"], code = "failing", err.Error(), http.StatusServiceUnavailable
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
