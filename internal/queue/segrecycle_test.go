package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

// countingLayer counts the segment files created (zero-filled) and the
// fdatasync calls made on them.
type countingLayer struct {
	osLayer
	mu             sync.Mutex
	creates, syncs int
}

func (l *countingLayer) Create(path string, size int64) (segFile, error) {
	f, err := l.osLayer.Create(path, size)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.creates++
	l.mu.Unlock()
	return &countingFile{segFile: f, l: l}, nil
}

func (l *countingLayer) Open(path string) (segFile, error) {
	f, err := l.osLayer.Open(path)
	if err != nil {
		return nil, err
	}
	return &countingFile{segFile: f, l: l}, nil
}

func (l *countingLayer) counts() (creates, syncs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.creates, l.syncs
}

type countingFile struct {
	segFile
	l *countingLayer
}

func (f *countingFile) Datasync() error {
	f.l.mu.Lock()
	f.l.syncs++
	f.l.mu.Unlock()
	return f.segFile.Datasync()
}

var sentOK = Result{State: Sent, Reply: smtp.NewReply(250, "2.0.0", "Ok")}

// relayThrough puts n messages of size octets and delivers each at once,
// collecting segments as it goes; it returns the IDs of the messages it
// left queued (every keepEvery-th is deferred, not sent).
func relayThrough(t *testing.T, q *Queue, first, n, size, keepEvery int) []string {
	return relayThroughSeqs(t, q, first, n, size, keepEvery, nil)
}

// relayThroughSeqs is relayThrough that also records each kept message's
// sequence number in seqOf, when not nil.
func relayThroughSeqs(t *testing.T, q *Queue, first, n, size, keepEvery int, seqOf map[string]int) []string {
	t.Helper()
	ctx := context.Background()
	var kept []string
	for i := first; i < first+n; i++ {
		id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(i, size))
		l := mustLease(t, q)
		if keepEvery > 0 && i%keepEvery == 0 {
			q.Release(l)
			q.Hold(ctx, id)
			kept = append(kept, id)
			if seqOf != nil {
				seqOf[id] = i
			}
		} else {
			if err := q.Update(ctx, nil, id, 0, sentOK); err != nil {
				t.Fatal(err)
			}
			q.Release(l)
		}
		q.gcStep()
	}
	return kept
}

// TestSegmentsRecycled: finished segments become the next segments
// instead of new zero-filled files, and a spool whose segments hold the
// records of earlier generations behind the current ones recovers exactly
// the messages still queued, after a clean stop and after a crash (the
// files as the process left them, without Close).
func TestSegmentsRecycled(t *testing.T) {
	dir := t.TempDir()
	fl := &countingLayer{}
	cfg := testConfig(dir, nil, nil)
	cfg.SegmentSize = 8 << 10
	q, err := openWith(cfg, fl)
	if err != nil {
		t.Fatal(err)
	}
	kept := relayThrough(t, q, 0, 80, 1500, 0)
	st := q.Stats()
	creates, _ := fl.counts()
	if st.SegmentsRemoved < 10 || creates > st.SegmentsRemoved/2 {
		t.Fatalf("%d segments finished, %d zero-filled files created: finished segments not reused", st.SegmentsRemoved, creates)
	}
	// Some messages stay, in segments that now hold older generations'
	// records after their own.
	seqOf := map[string]int{}
	kept = append(kept, relayThroughSeqs(t, q, 100, 40, 1500, 3, seqOf)...)
	crash := t.TempDir()
	copySpool(t, dir, crash) // what a SIGKILL leaves: every write, no Close
	q.Close()
	for _, d := range []string{dir, crash} {
		var logs logBuffer
		q, err := openWith(testConfig(d, nil, &logs), osLayer{})
		if err != nil {
			t.Fatal(err)
		}
		if len(q.msgs) != len(kept) {
			t.Errorf("%s: %d messages recovered, want the %d still queued", d, len(q.msgs), len(kept))
		}
		for _, id := range kept {
			if q.msgs[id] == nil {
				t.Errorf("%s: queued message %s lost", d, id)
			}
		}
		if s := logs.String(); reportsDamage(s) {
			t.Errorf("%s: stale records taken for damage:\n%s", d, s)
		}
		q.Close()
	}
	q, err = openWith(cfg, osLayer{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, id := range kept {
		if got := readBodyOf(t, q, id); !bytes.Equal(got, bodyFor(seqOf[id], 1500)) {
			t.Fatalf("message %s damaged", id)
		}
	}
}

// reportsDamage reports whether a recovery log names damage of any kind.
func reportsDamage(log string) bool {
	for _, m := range []string{"record skipped", "tail cut off", "damaged segment kept", "lost to damage", "tail left in place"} {
		if strings.Contains(log, m) {
			return true
		}
	}
	return false
}

// copySpool copies the segment and spare files of spool src to dst.
func copySpool(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// reusedSpool returns a stopped spool whose active segment is a reused one
// holding one queued message, and that segment's path.
func reusedSpool(t *testing.T) (dir, seg, id string) {
	t.Helper()
	dir = t.TempDir()
	cfg := testConfig(dir, nil, nil)
	cfg.SegmentSize = 8 << 10
	q := mustOpen(t, cfg)
	for i := 0; i < 200 && id == ""; i++ {
		relayThrough(t, q, i, 1, 1500, 0)
		if q.active.kind == kindReused && q.active.size-q.active.end > 2000 {
			id = putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(7, 300))
		}
	}
	if id == "" || q.msgs[id].base.seg != q.active || q.active.kind != kindReused {
		t.Fatal("no message in a reused segment")
	}
	seg = q.active.path
	q.Close()
	return dir, seg, id
}

// TestReusedSegmentTornTail: a torn write at the end of a reused segment
// (a header of its generation and part of the record) is cut off and kept
// in spool/corrupt/ like any torn tail, the stale records after it are
// not, and the next start finds nothing to cut.
func TestReusedSegmentTornTail(t *testing.T) {
	dir, seg, id := reusedSpool(t)
	cfg := testConfig(dir, nil, nil)
	cfg.SegmentSize = 8 << 10
	q := mustOpen(t, cfg)
	end, gen := q.active.end, q.active.gen
	q.Close()
	torn := encodeSimple(recHold, id)
	sealRecordGen(torn, gen)
	torn = torn[:len(torn)-3]
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(torn, end); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for round, wantCut := range []bool{true, false} {
		var logs logBuffer
		cfg := testConfig(dir, nil, &logs)
		cfg.SegmentSize = 8 << 10
		q := mustOpen(t, cfg)
		if q.msgs[id] == nil || q.msgs[id].held {
			t.Fatalf("round %d: message lost or torn hold applied", round)
		}
		if got := strings.Contains(logs.String(), "tail cut off"); got != wantCut {
			t.Fatalf("round %d: tail cut off logged %v, want %v:\n%s", round, got, wantCut, logs.String())
		}
		if strings.Contains(logs.String(), "damaged segment kept") || strings.Contains(logs.String(), "record skipped") {
			t.Fatalf("round %d: stale records reported as damage:\n%s", round, logs.String())
		}
		q.Close()
	}
	if tails, _ := filepath.Glob(filepath.Join(dir, corruptDir, filepath.Base(seg)+".tail-*")); len(tails) != 1 {
		t.Errorf("torn tail kept %d times, want once", len(tails))
	}
}

// TestRecyclingCrashWindows: a crash between the steps of reusing a file
// leaves a spool that recovers: a finished segment already marked free
// under its segment name is removed, and a spare that got its segment
// header but not its name is kept as the spare.
func TestRecyclingCrashWindows(t *testing.T) {
	dir, seg, id := reusedSpool(t)
	cfg := testConfig(dir, nil, nil)
	cfg.SegmentSize = 8 << 10
	// A finished segment marked free, not yet renamed: an extra file
	// with a higher segment number than any.
	free := filepath.Join(dir, segName(1<<40))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, bytes.Repeat(encodeSlot(segHeader{kind: kindFree, base: 1 << 20, gen: 1 << 20}), 2))
	if err := os.WriteFile(free, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A spare with a segment header (the rotation stopped before the
	// rename): records of a generation nobody else has.
	copy(b, bytes.Repeat(encodeSlot(segHeader{kind: kindReused, base: 1 << 21, gen: 1 << 21}), 2))
	if err := os.WriteFile(filepath.Join(dir, spareName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	cfg.Logger = testConfig(dir, nil, &logs).Logger
	q := mustOpen(t, cfg)
	defer q.Close()
	if _, err := os.Stat(free); err == nil {
		t.Error("segment marked free still in the spool")
	}
	if q.msgs[id] == nil || len(q.msgs) != 1 {
		t.Fatalf("%d messages recovered, want the one queued", len(q.msgs))
	}
	if q.c.ready == nil {
		t.Error("the spare with a segment header was not kept")
	}
	if q.gen.Load() <= 1<<21 {
		t.Errorf("generation %d given out after files naming %d", q.gen.Load(), 1<<21)
	}
	// Both go on working: the next segments' records are recovered.
	id2 := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(8, 6000))
	id3 := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(9, 6000))
	q.Close()
	q2 := mustOpen(t, cfg)
	defer q2.Close()
	for _, x := range []string{id, id2, id3} {
		if q2.msgs[x] == nil {
			t.Errorf("message %s lost", x)
		}
	}
}

// TestFormatOneSpoolRecovers: a spool written by an older Ferry (segments
// without a header, records without generations) recovers, and new
// records go to a new segment of the current format.
func TestFormatOneSpoolRecovers(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, nil, nil))
	var ids []string
	for i := range 4 {
		ids = append(ids, putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(i, 700)))
	}
	q.Hold(context.Background(), ids[1])
	seg := q.active
	var old []byte
	for off := seg.start(); off < seg.end; {
		rec, err := readRecordAt(loc{seg, off})
		if err != nil {
			t.Fatal(err)
		}
		sealRecordGen(rec, 0) // format 1: generation field zero, plain CRC
		old = append(old, rec...)
		off += int64(len(rec))
	}
	path := seg.path
	q.Close()
	if err := os.WriteFile(path, append(old, make([]byte, 4096)...), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	q = mustOpen(t, testConfig(dir, nil, &logs))
	if len(q.msgs) != 4 || !q.msgs[ids[1]].held {
		t.Fatalf("format 1 spool: %d messages recovered (want 4), hold kept %v:\n%s", len(q.msgs), q.msgs[ids[1]] != nil && q.msgs[ids[1]].held, logs.String())
	}
	if q.active.path == path || q.active.base == 0 {
		t.Fatal("new records would go to the format 1 segment")
	}
	id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(9, 700))
	q.Close()
	q = mustOpen(t, testConfig(dir, nil, nil))
	defer q.Close()
	for i, x := range ids {
		if got := readBodyOf(t, q, x); !bytes.Equal(got, bodyFor(i, 700)) {
			t.Fatalf("message %d damaged", i)
		}
	}
	if q.msgs[id] == nil {
		t.Fatal("message stored after the upgrade lost")
	}
}

// TestSentRecordsShareSync: sent states and done records do not wait for
// an fdatasync of their own, yet each is written when Update returns (a
// process that dies then loses none of them) and is on disk after Close.
func TestSentRecordsShareSync(t *testing.T) {
	dir := t.TempDir()
	fl := &countingLayer{}
	q, err := openWith(testConfig(dir, nil, nil), fl)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	var ids []string
	for i := range n {
		ids = append(ids, putBody(t, q, testEnv("s@example.org", "r@example.net", "r2@example.net"), bodyFor(i, 200)))
	}
	_, before := fl.counts()
	for _, id := range ids {
		if err := q.Update(context.Background(), nil, id, 0, sentOK); err != nil {
			t.Fatal(err)
		}
	}
	_, after := fl.counts()
	if after-before > n/2 {
		t.Errorf("%d fdatasyncs for %d sent states", after-before, n)
	}
	crash := t.TempDir()
	copySpool(t, dir, crash)
	q.Close()
	for _, d := range []string{crash, dir} {
		q := mustOpen(t, testConfig(d, nil, nil))
		for _, id := range ids {
			if m := q.msgs[id]; m == nil || m.rcpts[0].state != Sent || m.rcpts[1].state == Sent {
				t.Fatalf("%s: sent state of %s not recovered", d, id)
			}
		}
		q.Close()
	}
}

// TestDamagedSegmentHeader: with one header slot damaged the other
// counts and every message is recovered; with both damaged the segment is
// kept in spool/corrupt/ and reported; a format 1 segment whose first
// octet happens to be the magic's is still read as format 1.
func TestDamagedSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, nil, nil))
	id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(1, 500))
	seg := q.active.path
	q.Close()
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		damage  func(b []byte)
		want    int
		damaged bool
	}{
		{"slot 0", func(b []byte) { b[20] ^= 0xff }, 1, false},
		{"slot 1", func(b []byte) { b[slotSize+20] ^= 0xff }, 1, false},
		{"both slots", func(b []byte) { b[20] ^= 0xff; b[slotSize+20] ^= 0xff }, 0, true},
	} {
		d := t.TempDir()
		b := append([]byte(nil), orig...)
		tc.damage(b)
		if err := os.WriteFile(filepath.Join(d, filepath.Base(seg)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		var logs logBuffer
		q := mustOpen(t, testConfig(d, nil, &logs))
		if len(q.msgs) != tc.want || tc.want == 1 && q.msgs[id] == nil {
			t.Errorf("%s: %d messages recovered, want %d", tc.name, len(q.msgs), tc.want)
		}
		if got := strings.Contains(logs.String(), "damaged segment kept"); got != tc.damaged {
			t.Errorf("%s: damaged segment reported %v, want %v:\n%s", tc.name, got, tc.damaged, logs.String())
		}
		q.Close()
	}
	// Format 1 with its first record's type octet damaged into 'F': the
	// records after it are found again.
	d := t.TempDir()
	var legacy []byte
	for i := range 3 {
		env := testEnv("s@example.org", "r@example.net")
		env.ID = fmt.Sprintf("LEGACY%d", i)
		rec, _ := messagePrefix(nil, env)
		rec = append(rec, bodyFor(i, 300)...)
		sealRecord(rec)
		legacy = append(legacy, rec...)
	}
	legacy[0] = segMagic[0]
	if err := os.WriteFile(filepath.Join(d, segName(1)), legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	q = mustOpen(t, testConfig(d, nil, nil))
	defer q.Close()
	if len(q.msgs) != 2 || q.msgs["LEGACY1"] == nil || q.msgs["LEGACY2"] == nil {
		t.Fatalf("format 1 segment with a damaged first octet: %d messages recovered, want the 2 after the damage", len(q.msgs))
	}
}
