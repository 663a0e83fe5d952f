package queue

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Spill holds content that must be read again from its start (a message
// while it is signed before delivery, or verified at receipt before it is
// stored): in memory up to a limit, and while a MemBudget, when one is
// given, grants that memory without waiting; otherwise in an unlinked
// temporary file, so that many large messages at once hold disk space, not
// memory. It may be read any number of times; Close frees it.
type Spill struct {
	budget *MemBudget // nil: memory is not accounted
	dir    string     // for the temporary file; "" is os.TempDir()
	what   string     // names the use in errors
	limit  int64

	mem  []byte
	held int64 // octets taken from budget for mem's capacity
	file *os.File
	size int64
}

// NewSpill returns an empty Spill that keeps up to limit octets in memory
// (taken from budget when it is not nil) and the rest in a temporary file
// in dir. what names the use in its errors ("verification at receipt").
func NewSpill(budget *MemBudget, dir string, limit int64, what string) *Spill {
	return &Spill{budget: budget, dir: dir, limit: limit, what: what}
}

// UseBuffer gives an empty Spill without a budget b's capacity to fill
// before it allocates (b's content is ignored), for a caller that keeps one
// buffer from message to message; Detach gives it back. A buffer larger than
// the Spill's limit is not used.
func (s *Spill) UseBuffer(b []byte) {
	if s.budget == nil && s.size == 0 && s.file == nil && int64(cap(b)) <= s.limit {
		s.mem = b[:0]
	}
}

// Detach closes the Spill like Close and returns its memory for reuse with
// UseBuffer, or nil when the content went to the temporary file. Readers of
// the content must be done with it.
func (s *Spill) Detach() []byte {
	b := s.mem
	s.Close()
	return b[:0]
}

// Write appends p.
func (s *Spill) Write(p []byte) (int, error) {
	if s.file == nil {
		if need := len(s.mem) + len(p); need <= cap(s.mem) || s.grow(need) {
			s.mem = append(s.mem, p...)
			s.size += int64(len(p))
			return len(p), nil
		}
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	n, err := s.file.Write(p)
	s.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("%s: temporary file: %w", s.what, err)
	}
	return n, nil
}

// grow makes room in memory for need octets, taking the new capacity from
// the budget; false means the content goes to a file instead.
func (s *Spill) grow(need int) bool {
	if int64(need) > s.limit {
		return false
	}
	c := int(min(int64(max(2*cap(s.mem), need, 4096)), s.limit))
	more := int64(c - cap(s.mem))
	if s.budget != nil && !s.budget.TryAcquire(more) {
		return false
	}
	s.held += more
	grown := make([]byte, len(s.mem), c)
	copy(grown, s.mem)
	s.mem = grown
	return true
}

// toFile moves the content to an unlinked temporary file and returns its
// memory to the budget.
func (s *Spill) toFile() error {
	f, err := os.CreateTemp(s.dir, ".ferry-spill-*")
	if err != nil {
		return fmt.Errorf("%s: temporary file: %w", s.what, err)
	}
	_ = os.Remove(f.Name()) // unlinked: gone when closed, whatever happens
	if _, err := f.Write(s.mem); err != nil {
		f.Close()
		return fmt.Errorf("%s: temporary file: %w", s.what, err)
	}
	s.file = f
	s.mem = nil
	s.release()
	return nil
}

// InFile reports whether the content went to the temporary file.
func (s *Spill) InFile() bool { return s.file != nil }

// Reader returns a reader of the whole content from its start.
func (s *Spill) Reader() io.Reader {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return bytes.NewReader(s.mem)
}

// Close returns the memory to the budget and removes the temporary file.
func (s *Spill) Close() {
	s.release()
	s.mem = nil
	if s.file != nil {
		_ = s.file.Close()
		s.file = nil
	}
}

// release returns the memory held to the budget.
func (s *Spill) release() {
	if s.budget != nil {
		s.budget.Release(s.held)
	}
	s.held = 0
}
