package admin

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/ferrymta/ferry/internal/queue"
)

// offlineSegmentSize bounds the segment OpenSpool's queue preallocates.
const offlineSegmentSize = 1 << 20

// OpenSpool opens the spool of a stopped server for "ferry queue", as
// postsuper works on Postfix's queue while Postfix is down. It takes the
// spool's lock (so it fails while a server runs on the spool) and returns
// a client whose requests the admin API handler answers in this process,
// with retry and bounce refused (they need delivery and DSNs), and a
// function that closes the queue and releases the lock.
func OpenSpool(cfg queue.Config) (*Client, func() error, error) {
	cfg.Offline = true
	cfg.OnEvent = nil
	// The segment every Open starts holds only the few records of
	// administrative changes; the server removes it when it runs again.
	if cfg.SegmentSize == 0 || cfg.SegmentSize > offlineSegmentSize {
		cfg.SegmentSize = offlineSegmentSize
	}
	q, err := queue.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	h := Protect(New(Options{Queue: q, Logger: cfg.Logger, Spool: cfg.Dir, Offline: true}), Guard{Addr: cfg.Dir})
	c := &Client{
		addr: fmt.Sprintf("the spool %s (no server running; lock held)", cfg.Dir),
		base: "http://" + UnixHost,
		hc:   &http.Client{Transport: inProcess{h}},
	}
	return c, q.Close, nil
}

// inProcess is an http.RoundTripper that has a handler answer each request
// in this process.
type inProcess struct{ h http.Handler }

// RoundTrip runs the handler on req and returns what it wrote.
func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}}
	t.h.ServeHTTP(rec, req)
	if req.Body != nil {
		req.Body.Close()
	}
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	resp := &http.Response{
		Status:     fmt.Sprintf("%d %s", rec.code, http.StatusText(rec.code)),
		StatusCode: rec.code,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        rec.header,
		Body:          io.NopCloser(&rec.body),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}
	return resp, nil
}

// recorder is the http.ResponseWriter of inProcess.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}
