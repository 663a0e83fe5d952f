package dsn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestFailureReportOnFullSpool runs the Notifier on a real queue whose
// spool, on a 4 MiB tmpfs, is full (new mail refused for the reserve), as
// "ferry serve" wires them (reports through PutReport). A failure then
// must still get its report, out of the reserve; once the reports' half of
// the reserve is used up too, a failure must keep its message (outcome
// recorded, "dsn-deferred" logged, nothing lost), and when the other
// messages finish and their segment is removed, the report must be queued
// by itself and the failed message removed.
func TestFailureReportOnFullSpool(t *testing.T) {
	mnt := testrelay.MountTmpfs(t, "4m")
	log := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(log, nil))
	var q *queue.Queue
	n, err := NewNotifier(NotifierConfig{ReportingMTA: "relay.example.com", Logger: logger},
		func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
			return q.PutReport(ctx, env, body)
		})
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(mnt, "spool")
	cfg := queue.DefaultConfig(spool)
	cfg.Logger, cfg.OnEvent = logger, n.OnEvent
	cfg.SegmentSize, cfg.Reserve, cfg.GCInterval = 1<<20, 64<<10, 50*time.Millisecond
	q, err = queue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	testrelay.WaitFor(t, "the prepared next segment", func() bool {
		st, err := os.Stat(filepath.Join(spool, "spare.tmp"))
		return err == nil && st.Size() == cfg.SegmentSize
	})
	ballast := filepath.Join(mnt, "ballast")
	if err := os.Truncate(ballast, testrelay.FillDisk(t, ballast)-96<<10); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	put := func(size, i int) (string, error) {
		env := &smtp.Envelope{From: path("alice", "example.net"), Rcpts: []smtp.Recipient{{Addr: path(fmt.Sprintf("r%d", i), "example.org")}}}
		return q.Put(ctx, env, strings.NewReader(filler(i, size)))
	}
	var ids, large []string
	for _, size := range []int{16 << 10, 300} { // large, then small until even those are refused
		for i := 0; ; i++ {
			if i == 400 {
				t.Fatalf("400 messages of %d octets stored in two 1 MiB segments", size)
			}
			id, err := put(size, len(ids))
			if errors.Is(err, queue.ErrSpoolFull) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
			if size > 300 {
				large = append(large, id)
			}
		}
	}
	if _, err := put(300, 9999); !errors.Is(err, queue.ErrSpoolFull) {
		t.Fatalf("new mail on the full spool: %v, want ErrSpoolFull", err)
	}
	fail := func(id string) {
		t.Helper()
		res := queue.Result{State: queue.Failed, Reply: reply550, RemoteMTA: "mx.example.org[192.0.2.1]:25"}
		if err := q.Update(ctx, nil, id, 0, res); err != nil {
			t.Fatalf("recording the failure of %s: %v", id, err)
		}
	}

	// A failure on the full spool: its report is queued, from the reserve.
	first, kept := large[len(large)-2], large[len(large)-1] // in the last segment
	fail(first)
	if !strings.Contains(log.String(), "msg=dsn id="+first) {
		t.Fatalf("no report for %s on the full spool:\n%s", first, log.String())
	}
	if _, err := q.Show(first); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("failed message %s still queued after its report: %v", first, err)
	}

	// Use up the reports' half of the reserve.
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("100 reports of 1 KiB stored in the reserve")
		}
		env := &smtp.Envelope{Rcpts: []smtp.Recipient{{Addr: path("postmaster", "example.net")}}}
		if _, err := q.PutReport(ctx, env, strings.NewReader(filler(i, 1<<10))); errors.Is(err, queue.ErrSpoolFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	fail(kept)
	deferred := log.String()
	if !strings.Contains(deferred, "msg=dsn-deferred id="+kept) || strings.Contains(deferred, "msg=dsn id="+kept) {
		t.Fatalf("failure of %s with no room for its report: want dsn-deferred and no report yet:\n%s", kept, deferred)
	}
	m, err := q.Show(kept)
	if err != nil {
		t.Fatalf("the failed message whose report is owed is gone: %v", err)
	}
	if m.Rcpts[0].State != queue.Failed || m.Rcpts[0].LastReply.Code != 550 {
		t.Errorf("kept message's recipient %+v, want failed with its 550", m.Rcpts[0])
	}

	// The other messages are delivered: the first segment goes, and the
	// owed report is queued by itself.
	for _, id := range ids {
		if id == first || id == kept {
			continue
		}
		if err := q.Update(ctx, nil, id, 0, queue.Result{State: queue.Sent, Reply: reply250}); err != nil {
			t.Fatalf("recording the delivery of %s: %v", id, err)
		}
	}
	testrelay.WaitFor(t, "the owed report to be queued", func() bool {
		return strings.Contains(log.String(), "msg=dsn id="+kept)
	})
	testrelay.WaitFor(t, "the failed message to be removed after its report", func() bool {
		_, err := q.Show(kept)
		return errors.Is(err, queue.ErrNotFound)
	})
	var report *queue.MessageInfo
	err = q.Walk(queue.Filter{}, func(mi *queue.MessageInfo) bool {
		if mi.Env.From.IsNull() && mi.Rcpts[0].Addr.Address() == "alice@example.net" &&
			bytes.Contains(readAll(t, mi), []byte("X-Ferry-Queue-ID: "+kept)) {
			report = mi
			return false
		}
		return true
	})
	if err != nil || report == nil {
		t.Fatalf("no report about %s in the queue (%v)", kept, err)
	}
	lines := strings.Split(log.String(), "\n")
	for _, l := range lines {
		if strings.Contains(l, "msg=dsn id="+kept) && !strings.Contains(l, "retried=true") {
			t.Errorf("the owed report's line does not say it was retried: %s", l)
		}
	}
	if strings.Contains(log.String(), "msg=dsn-suppressed") {
		t.Errorf("a report was suppressed on the full spool:\n%s", log.String())
	}
}

// readAll reads a queued message's body.
func readAll(t *testing.T, m *queue.MessageInfo) []byte {
	t.Helper()
	rc, err := m.Body()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// filler is a message of about size octets, numbered i.
func filler(i, size int) string {
	head := fmt.Sprintf("From: <alice@example.net>\r\nSubject: filler %d\r\n\r\n", i)
	line := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+-\r\n"
	return head + strings.Repeat(line, max(1, (size-len(head))/len(line)))
}
