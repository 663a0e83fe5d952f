package queue

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPutReopenKeepsMessages(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, nil, nil))
	var ids []string
	for i := range 20 {
		ids = append(ids, putBody(t, q, testEnv("s@example.org", "a@one.example", "b@Two.Example"), bodyFor(i, 100+i*50)))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = mustOpen(t, testConfig(dir, nil, nil))
	defer q.Close()
	for i, id := range ids {
		if got := readBodyOf(t, q, id); !bytes.Equal(got, bodyFor(i, 100+i*50)) {
			t.Errorf("body of %s differs after reopen", id)
		}
		info, _ := q.Show(id)
		if info.Env.From.LocalPart != "s" || len(info.Rcpts) != 2 || info.Rcpts[1].Hop != "two.example" {
			t.Errorf("envelope of %s: %+v", id, info)
		}
	}
}

func TestPutBodyErrorWritesNothing(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, nil, nil))
	defer q.Close()
	boom := errors.New("client went away")
	r := ioErrReader{data: []byte("Subject: x\r\n"), err: boom}
	if _, err := q.Put(context.Background(), testEnv("s@example.org", "a@example.net"), &r); !errors.Is(err, boom) {
		t.Fatalf("Put error = %v, want %v", err, boom)
	}
	if !q.active.empty() || len(q.msgs) != 0 {
		t.Fatalf("failed Put wrote %d octets, indexed %d messages", q.active.end, len(q.msgs))
	}
}

type ioErrReader struct {
	data []byte
	err  error
}

func (r *ioErrReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// spoolWithThree writes three messages into one segment and returns the
// segment's bytes, the offset of the third record and the IDs.
func spoolWithThree(t *testing.T) ([]byte, int64, []string) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, nil, nil))
	var ids []string
	for i := range 3 {
		ids = append(ids, putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(i, 300)))
	}
	last := q.msgs[ids[2]].base.off
	path := q.active.path
	end := q.active.end
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[:end], last, ids
}

func TestTornTailEveryOffset(t *testing.T) {
	seg, last, ids := spoolWithThree(t)
	for _, pad := range []bool{false, true} {
		for cut := last; cut < int64(len(seg)); cut++ {
			dir := t.TempDir()
			data := append([]byte(nil), seg[:cut]...)
			if pad { // a preallocated file: the torn record is followed by zeros
				data = append(data, make([]byte, 4096)...)
			}
			if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			cfg := testConfig(dir, nil, &logs)
			cfg.SegmentSize = 4 << 10
			q, err := openWith(cfg, osLayer{noSync: true})
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range ids[:2] {
				if got := readBodyOf(t, q, id); !bytes.Equal(got, bodyFor(i, 300)) {
					t.Fatalf("cut %d: message %d damaged", cut, i)
				}
			}
			if _, err := q.Show(ids[2]); !errors.Is(err, ErrNotFound) {
				t.Fatalf("cut %d: torn message present (err %v)", cut, err)
			}
			if cut > last && !strings.Contains(logs.String(), "tail cut off") {
				t.Fatalf("cut %d: no log of the cut tail:\n%s", cut, logs.String())
			}
			// The queue works on: a new message survives another restart.
			id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(9, 100))
			q.Close()
			q, err = openWith(cfg, osLayer{noSync: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := readBodyOf(t, q, id); !bytes.Equal(got, bodyFor(9, 100)) {
				t.Fatalf("cut %d: message after recovery damaged", cut)
			}
			q.Close()
		}
	}
}

func TestCorruptMiddleRecordSkipped(t *testing.T) {
	seg, _, ids := spoolWithThree(t)
	dir := t.TempDir()
	// Damage the second record's body.
	secondOff := bytes.Index(seg, []byte("message 1"))
	data := append([]byte(nil), seg...)
	data[secondOff] ^= 0xff
	if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	q := mustOpen(t, testConfig(dir, nil, &logs))
	defer q.Close()
	if _, err := q.Show(ids[1]); !errors.Is(err, ErrNotFound) {
		t.Errorf("corrupt message present (err %v)", err)
	}
	for _, i := range []int{0, 2} {
		if got := readBodyOf(t, q, ids[i]); !bytes.Equal(got, bodyFor(i, 300)) {
			t.Errorf("message %d damaged", i)
		}
	}
	if !strings.Contains(logs.String(), "corrupt record skipped") {
		t.Errorf("skip not reported:\n%s", logs.String())
	}
}

func TestBodyReaderDetectsCorruption(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, nil, nil))
	defer q.Close()
	id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(1, 2000))
	m := q.msgs[id]
	if _, err := m.base.seg.f.WriteAt([]byte{'#'}, m.base.off+int64(m.bodyOff)+1000); err != nil {
		t.Fatal(err)
	}
	info, _ := q.Show(id)
	rc, _ := info.Body()
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); !errors.Is(err, errCorrupt) {
		t.Fatalf("reading a damaged body: err %v, want corrupt", err)
	}
}
