package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
)

// fakeSwitch keeps rules, refusing a client list with "bad" in it.
type fakeSwitch struct {
	mu    sync.Mutex
	rules TranscriptRules
}

func (f *fakeSwitch) Transcripts() TranscriptRules {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rules
}

func (f *fakeSwitch) SetTranscripts(r TranscriptRules) error {
	for _, c := range r.Clients {
		if strings.Contains(c, "bad") {
			return errors.New(`client network "bad": not a network`)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = r
	return nil
}

func TestTranscriptsEndpoint(t *testing.T) {
	q, _ := openQueue(t, discardLogger(), nil)
	var logs logBuffer
	sw := &fakeSwitch{}
	_, addr := startAdmin(t, Options{Queue: q, Transcripts: sw, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	base := "http://" + addr + "/transcripts"

	get := func() (TranscriptRules, string) {
		t.Helper()
		resp, err := http.Get(base)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw bytes.Buffer
		raw.ReadFrom(resp.Body)
		var r TranscriptRules
		if err := json.Unmarshal(raw.Bytes(), &r); err != nil {
			t.Fatalf("GET /transcripts: %v: %s", err, raw.String())
		}
		return r, raw.String()
	}
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(base, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw bytes.Buffer
		raw.ReadFrom(resp.Body)
		return resp.StatusCode, raw.String()
	}

	if _, raw := get(); !strings.Contains(raw, `"clients": []`) || !strings.Contains(raw, `"dir": ""`) {
		t.Errorf("GET before any rule: %s", raw)
	}
	code, raw := post(`{"dir": "/tmp/t", "clients": ["192.0.2.0/24"], "next_hops": ["mx.example.com"], "full_content": true}`)
	if code != 200 || !strings.Contains(raw, `"mx.example.com"`) {
		t.Fatalf("POST: %d %s", code, raw)
	}
	want := TranscriptRules{Dir: "/tmp/t", Clients: []string{"192.0.2.0/24"}, NextHops: []string{"mx.example.com"}, FullContent: true}
	if r, _ := get(); r.Dir != want.Dir || len(r.Clients) != 1 || r.NextHops[0] != "mx.example.com" || !r.FullContent {
		t.Errorf("GET after POST: %+v, want %+v", r, want)
	}
	if !strings.Contains(logs.String(), "action=transcripts") {
		t.Errorf("no admin line for the change:\n%s", logs.String())
	}
	for _, bad := range []string{`{"clients": ["bad"]}`, `{"dirr": "/x"}`, `not json`} {
		if code, raw := post(bad); code != 400 || !strings.Contains(raw, `"error"`) {
			t.Errorf("POST %s: %d %s, want 400 with an error", bad, code, raw)
		}
	}
	if r, _ := get(); r.Dir != "/tmp/t" {
		t.Errorf("a refused POST changed the rules: %+v", r)
	}

	// Without a switch the endpoint does not exist.
	_, addr2 := startAdmin(t, Options{Queue: q})
	resp, err := http.Get("http://" + addr2 + "/transcripts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /transcripts without a switch: %s", resp.Status)
	}
}

// TestCommitMetrics wires a queue's OnCommit to ObserveCommit and checks
// the group-commit histograms on /metrics.
func TestCommitMetrics(t *testing.T) {
	m := NewMetrics()
	cfg := queue.DefaultConfig(t.TempDir())
	cfg.Logger = discardLogger()
	cfg.SegmentSize = 256 << 10
	cfg.OnCommit = m.ObserveCommit
	q, err := queue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	for range 3 {
		put(t, q, plainBody, "a@x.test", "b@y.test")
	}
	_, addr := startAdmin(t, Options{Queue: q, Metrics: m})
	got := scrape(t, addr)
	n := got["ferry_queue_commit_batch_requests_count"]
	if n < 1 || n > 3 || got["ferry_queue_commit_batch_requests_sum"] < 3 {
		t.Errorf("batch histogram: count %v sum %v; want 1..3 commits carrying at least 3 Puts", n, got["ferry_queue_commit_batch_requests_sum"])
	}
	if got["ferry_queue_fsync_seconds_count"] != n || got[`ferry_queue_fsync_seconds_bucket{le="+Inf"}`] != n {
		t.Errorf("fsync histogram count %v, want %v (one per commit)", got["ferry_queue_fsync_seconds_count"], n)
	}
	if got["ferry_queue_commit_bytes_total"] < float64(3*len(plainBody)) {
		t.Errorf("commit bytes %v, want at least 3 bodies", got["ferry_queue_commit_bytes_total"])
	}
}
