package deliver

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/sink"
)

// countOpens makes it.Body count how often the content is opened.
func countOpens(it queue.Item, n *atomic.Int32) queue.Item {
	open := it.Body
	it.Body = func() (io.ReadCloser, error) { n.Add(1); return open() }
	return it
}

// TestStoredScanSpareRead: a message queued with its content scan is read
// once per attempt (to send it); one stored without (an older spool) is
// scanned first, then sent. Both arrive.
func TestStoredScanSpareRead(t *testing.T) {
	s, rt := startSink(t, sink.Options{})
	q := newMemQueue()
	a, _ := testAgent(t, q, rt, nil)
	body := "Subject: scan\r\n\r\nplain text\r\n"
	for _, tt := range []struct {
		name  string
		scan  *downgrade.Needs
		opens int32
	}{
		{"stored scan", &downgrade.Needs{}, 1},
		{"no stored scan", nil, 2},
	} {
		var n atomic.Int32
		it := testMessage("ID-"+strings.ReplaceAll(tt.name, " ", "-"), body, "x@hop.test")
		it.Env.ContentScan = tt.scan
		a.DeliverLease(context.Background(), &queue.Lease{Hop: "hop.test", Items: []queue.Item{countOpens(it, &n)}})
		if r := q.last(t, it.Env.ID, 0); r.State != queue.Sent {
			t.Fatalf("%s: %v", tt.name, r.Reply)
		}
		if got := n.Load(); got != tt.opens {
			t.Errorf("%s: content opened %d times, want %d", tt.name, got, tt.opens)
		}
	}
	if got := len(s.Messages()); got != 2 {
		t.Errorf("%d messages at the sink, want 2", got)
	}
}

// BenchmarkDeliverSinkStoredScan is BenchmarkDeliverSink for a message
// queued with its content scan (no scan before the attempt).
func BenchmarkDeliverSinkStoredScan(b *testing.B) { benchDeliverSink(b, &downgrade.Needs{}) }
