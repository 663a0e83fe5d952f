package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// faultLayer is the real file layer with an injectable full disk: while
// full, creating a segment fails and a write stores half its data and
// fails, both with ENOSPC (or errno when set, e.g. EROFS or EIO).
type faultLayer struct {
	osLayer
	mu                        sync.Mutex
	full                      bool
	errno                     syscall.Errno
	failedCreate, failedWrite int
}

// fault returns the injected error number.
func (l *faultLayer) fault() syscall.Errno {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.errno != 0 {
		return l.errno
	}
	return syscall.ENOSPC
}

func (l *faultLayer) setFull(v bool) {
	l.mu.Lock()
	l.full = v
	l.mu.Unlock()
}

func (l *faultLayer) isFull() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.full
}

func (l *faultLayer) Create(path string, size int64) (segFile, error) {
	if l.isFull() {
		l.mu.Lock()
		l.failedCreate++
		l.mu.Unlock()
		return nil, &os.PathError{Op: "fallocate", Path: path, Err: l.fault()}
	}
	f, err := l.osLayer.Create(path, size)
	if err != nil {
		return nil, err
	}
	return &faultFile{segFile: f, l: l}, nil
}

func (l *faultLayer) Rename(oldpath, newpath string) error {
	if l.isFull() {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: l.fault()}
	}
	return l.osLayer.Rename(oldpath, newpath)
}

func (l *faultLayer) Open(path string) (segFile, error) {
	f, err := l.osLayer.Open(path)
	if err != nil {
		return nil, err
	}
	return &faultFile{segFile: f, l: l}, nil
}

type faultFile struct {
	segFile
	l *faultLayer
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if f.l.isFull() {
		f.l.mu.Lock()
		f.l.failedWrite++
		f.l.mu.Unlock()
		n, _ := f.segFile.WriteAt(p[:len(p)/2], off)
		return n, &os.PathError{Op: "write", Path: "segment", Err: f.l.fault()}
	}
	return f.segFile.WriteAt(p, off)
}

func TestFullDiskInjected(t *testing.T) {
	dir := t.TempDir()
	fl := &faultLayer{}
	var logs logBuffer
	cfg := testConfig(dir, nil, &logs)
	cfg.SegmentSize = 16 << 10
	q, err := openWith(cfg, fl)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	seqs := map[string]int{}
	put := func(seq int) (string, error) {
		return q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(seq, 3000)))
	}
	for i := range 5 {
		id, err := put(i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		seqs[id] = i
	}
	// Alternate a full disk and free space, so that both a failed
	// rotation and a failed (half done) write occur.
	seq := 5
	for round := range 6 {
		fl.setFull(true)
		for range 3 {
			if _, err := put(1000 + seq); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("round %d: Put on a full disk: err %v, want ENOSPC in the chain", round, err)
			}
		}
		fl.setFull(false)
		for range 2 {
			id, err := put(seq)
			if err != nil {
				t.Fatalf("round %d: Put after space returned: %v\n%s", round, err, logs.String())
			}
			ids = append(ids, id)
			seqs[id] = seq
			seq++
		}
	}
	if fl.failedCreate == 0 || fl.failedWrite == 0 {
		t.Fatalf("faults not both exercised: %d failed creates, %d failed writes", fl.failedCreate, fl.failedWrite)
	}
	q.Close()
	q = mustOpen(t, testConfig(dir, nil, &logs))
	defer q.Close()
	for _, id := range ids {
		if b := readBodyOf(t, q, id); !bytes.Equal(b, bodyFor(seqs[id], 3000)) {
			t.Fatalf("message %s damaged", id)
		}
	}
	if len(q.msgs) != len(ids) {
		t.Errorf("%d messages after reopen, want %d: a failed Put was stored", len(q.msgs), len(ids))
	}
	if s := logs.String(); strings.Contains(s, "record skipped") || strings.Contains(s, "cut off") {
		t.Errorf("the log was damaged:\n%s", s)
	}
}

func TestFullDiskTmpfs(t *testing.T) {
	mnt := testrelay.MountTmpfs(t, "2m")
	// Ballast the operator can delete to free space.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "spool")
	cfg := testConfig(dir, nil, nil)
	cfg.SegmentSize = 128 << 10
	q := mustOpen(t, cfg)
	defer func() { q.Close() }() // before the umount; Close is idempotent
	acked := map[string]int{}
	var fullErr error
	for i := range 1000 {
		id, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(i, 16<<10)))
		if err != nil {
			fullErr = err
			break
		}
		acked[id] = i
	}
	if !errors.Is(fullErr, syscall.ENOSPC) {
		t.Fatalf("filling a 2 MiB tmpfs: err %v after %d messages, want ENOSPC", fullErr, len(acked))
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	for i := 1000; i < 1005; i++ {
		id, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(i, 16<<10)))
		if err != nil {
			t.Fatalf("Put after freeing space: %v", err)
		}
		acked[id] = i
	}
	q.Close()
	q = mustOpen(t, cfg)
	for id, seq := range acked {
		if b := readBodyOf(t, q, id); !bytes.Equal(b, bodyFor(seq, 16<<10)) {
			t.Fatalf("message %s damaged", id)
		}
	}
	t.Log(fmt.Sprintf("%d messages stored around a full disk", len(acked)))
}
