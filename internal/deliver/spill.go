package deliver

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// spillMemory is how much of a message a spill buffer keeps in memory
// before it moves to a temporary file.
const spillMemory = 4 << 20

// spill holds the exact content to be sent while it is signed: in memory
// up to spillMemory octets, in an unlinked temporary file beyond. Readers
// may read it from the start any number of times.
type spill struct {
	mem  bytes.Buffer
	file *os.File
	size int64
}

// Write appends p.
func (s *spill) Write(p []byte) (int, error) {
	if s.file == nil && s.mem.Len()+len(p) <= spillMemory {
		s.size += int64(len(p))
		return s.mem.Write(p)
	}
	if s.file == nil {
		f, err := os.CreateTemp("", "ferry-sign-*")
		if err != nil {
			return 0, fmt.Errorf("deliver: temporary file for signing: %w", err)
		}
		_ = os.Remove(f.Name()) // unlinked: gone when closed, whatever happens
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("deliver: temporary file for signing: %w", err)
		}
		s.file = f
		s.mem = bytes.Buffer{}
	}
	n, err := s.file.Write(p)
	s.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("deliver: temporary file for signing: %w", err)
	}
	return n, nil
}

// Reader returns a reader of the whole content from its start.
func (s *spill) Reader() io.Reader {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return bytes.NewReader(s.mem.Bytes())
}

// Close releases the temporary file.
func (s *spill) Close() {
	if s.file != nil {
		_ = s.file.Close()
		s.file = nil
	}
}
