package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// segFile is one open segment file. The file layer is an interface so tests
// can inject write errors (a full disk) without a small file system.
type segFile interface {
	io.ReaderAt
	WriteAt(p []byte, off int64) (int, error)
	// Datasync flushes written data to stable storage (fdatasync(2)).
	Datasync() error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

// fileLayer creates, opens and removes segment files.
type fileLayer interface {
	// Create makes a new file of the given size with its space allocated,
	// synced together with its directory entry.
	Create(path string, size int64) (segFile, error)
	Open(path string) (segFile, error)
	Remove(path string) error
	// Rename renames a file and syncs its directory.
	Rename(oldpath, newpath string) error
	// Free returns the octets an unprivileged process may still allocate
	// on the file system holding dir (statfs(2) f_bavail × f_bsize).
	Free(dir string) (int64, error)
}

// osLayer is the real file layer. noSync (tests only) skips every sync,
// for tests that reopen spools hundreds of times and test no durability.
type osLayer struct{ noSync bool }

// osFile is an *os.File with fdatasync.
type osFile struct {
	*os.File
	fd     int
	noSync bool
}

func (f osFile) Datasync() error {
	if f.noSync {
		return nil
	}
	for {
		err := syscall.Fdatasync(f.fd)
		if err != syscall.EINTR {
			if err != nil {
				return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
			}
			return nil
		}
	}
}

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (l osLayer) Create(path string, size int64) (segFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	of := osFile{File: f, fd: int(f.Fd()), noSync: l.noSync}
	fail := func(err error) (segFile, error) {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if size > 0 {
		if err := preallocate(of, size); err != nil {
			return fail(fmt.Errorf("preallocate %s: %w", path, err))
		}
	}
	if l.noSync {
		return of, nil
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", path, err))
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fail(err)
	}
	return of, nil
}

// preallocate gives the file its full size with blocks allocated and
// written, so that later writes inside it change no metadata (not even
// ext4's unwritten-extent flags, which would make every fdatasync a journal
// commit) and cannot meet ENOSPC. fallocate(2) reserves the space first
// where supported, so a full disk is found at once; zeros are then written
// over all of it.
func preallocate(f osFile, size int64) error {
	err := syscall.Fallocate(f.fd, 0, 0, size)
	if err != nil && !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOSYS) {
		return err
	}
	// Flush every few MiB: one large flush at the end would hold up the
	// committer's fdatasync calls behind it in the file system's journal.
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zero)) {
		n := min(int64(len(zero)), size-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return err
		}
		if (off/int64(len(zero)))%4 == 3 {
			if err := f.Datasync(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l osLayer) Open(path string) (segFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{File: f, fd: int(f.Fd()), noSync: l.noSync}, nil
}

func (l osLayer) Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	if l.noSync {
		return nil
	}
	return syncDir(filepath.Dir(newpath))
}

func (l osLayer) Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	if l.noSync {
		return nil
	}
	return syncDir(filepath.Dir(path))
}

func (osLayer) Free(dir string) (int64, error) { return statfsFree(dir) }

// syncDir makes a directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// segment is one segment file in the spool.
type segment struct {
	no   uint64
	path string
	f    segFile
	// end is where the next record goes (active segment) or the end of
	// the valid records (older segments).
	end int64
	// size is the preallocated size.
	size int64
	// refs counts live messages with at least one record here.
	refs int
	// readers counts open body readers.
	readers int
	// live counts octets of message records of live messages whose
	// current copy is here.
	live int64
	// damaged is set by recovery for a segment kept in spool/corrupt/:
	// it is left exactly as it is.
	damaged bool
	// base and gen are the segment's generations (segheader.go): no
	// record in it is older than base, gen is the generation records are
	// written with now; both 0 for a format 1 segment. kind says what
	// follows the records; slot is the header slot holding gen.
	base, gen uint64
	kind      byte
	slot      int
}

// recordValid reports whether rec, found at the place of the next record
// of s after one of generation cur, is one: its generation field and CRC
// check. In format 1 octets 1 to 3 are zero; in format 2 the generation
// lies between cur and s.gen (a record is never older than the one
// before it, so the records of a run that crashed are not taken for the
// records after a later run's). It returns the record's generation.
func (s *segment) recordValid(rec []byte, cur uint64) (uint64, bool) {
	if s.base == 0 {
		return 0, rec[1] == 0 && rec[2] == 0 && rec[3] == 0 && checkCRCGen(rec, 0)
	}
	g := s.recordGen(rec)
	if g < cur || g > s.gen {
		return g, false
	}
	return g, checkCRCGen(rec, g)
}

const segPrefix, segSuffix = "seg-", ".log"

// segName returns the file name of segment no; names sort in number order.
func segName(no uint64) string {
	return fmt.Sprintf("%s%016x%s", segPrefix, no, segSuffix)
}

// listSegments returns the segment numbers found in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read spool directory: %w", err)
	}
	var nos []uint64
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, segPrefix) || !strings.HasSuffix(n, segSuffix) {
			continue
		}
		no, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, segPrefix), segSuffix), 16, 64)
		if err != nil {
			continue
		}
		nos = append(nos, no)
	}
	sort.Slice(nos, func(i, j int) bool { return nos[i] < nos[j] })
	return nos, nil
}
