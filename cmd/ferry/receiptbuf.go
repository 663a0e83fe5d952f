package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/ferrymta/ferry/internal/queue"
)

// receiptMemory is the most of one message a receipt buffer keeps in
// memory (less when the budget is small: receiptMemoryShare); a larger
// message goes to a temporary file.
const receiptMemory = 1 << 20

// receiptMemoryShare caps one buffer's memory at this fraction of the
// budget, so that a buffer and the queue's copy of the same message always
// fit in the budget together.
const receiptMemoryShare = 8

// receiptBuffer holds a message while it is verified at receipt, before it
// is stored: in memory while that is taken from the queue's memory budget
// (queue.MemBudget, the one Put reads content through) without waiting and
// stays under receiptMemory octets; otherwise in an unlinked temporary file
// in the spool directory, so that many parallel large messages hold disk
// space, not memory. It may be read from its start any number of times.
type receiptBuffer struct {
	budget *queue.MemBudget
	dir    string
	limit  int64

	mem  []byte
	held int64 // octets taken from the budget for mem's capacity
	file *os.File
	size int64
}

// newReceiptBuffer returns an empty buffer spilling into dir.
func newReceiptBuffer(budget *queue.MemBudget, dir string) *receiptBuffer {
	return &receiptBuffer{budget: budget, dir: dir, limit: min(receiptMemory, budget.Total()/receiptMemoryShare)}
}

// Write appends p.
func (b *receiptBuffer) Write(p []byte) (int, error) {
	if b.file == nil {
		if need := len(b.mem) + len(p); need <= cap(b.mem) || b.grow(need) {
			b.mem = append(b.mem, p...)
			b.size += int64(len(p))
			return len(p), nil
		}
		if err := b.spill(); err != nil {
			return 0, err
		}
	}
	n, err := b.file.Write(p)
	b.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("verification at receipt: temporary file: %w", err)
	}
	return n, nil
}

// grow makes room in memory for need octets, taking the new capacity from
// the budget; false means the content goes to a file instead.
func (b *receiptBuffer) grow(need int) bool {
	if int64(need) > b.limit {
		return false
	}
	c := int(min(int64(max(2*cap(b.mem), need, 4096)), b.limit))
	more := int64(c - cap(b.mem))
	if !b.budget.TryAcquire(more) {
		return false
	}
	b.held += more
	grown := make([]byte, len(b.mem), c)
	copy(grown, b.mem)
	b.mem = grown
	return true
}

// spill moves the content to an unlinked temporary file and returns its
// memory to the budget.
func (b *receiptBuffer) spill() error {
	f, err := os.CreateTemp(b.dir, ".verify-*")
	if err != nil {
		return fmt.Errorf("verification at receipt: temporary file: %w", err)
	}
	_ = os.Remove(f.Name()) // unlinked: gone when closed, whatever happens
	if _, err := f.Write(b.mem); err != nil {
		f.Close()
		return fmt.Errorf("verification at receipt: temporary file: %w", err)
	}
	b.file = f
	b.mem = nil
	b.budget.Release(b.held)
	b.held = 0
	return nil
}

// Reader returns a reader of the whole content from its start.
func (b *receiptBuffer) Reader() io.Reader {
	if b.file != nil {
		return io.NewSectionReader(b.file, 0, b.size)
	}
	return bytes.NewReader(b.mem)
}

// Close returns the memory to the budget and removes the temporary file.
func (b *receiptBuffer) Close() {
	b.budget.Release(b.held)
	b.held, b.mem = 0, nil
	if b.file != nil {
		_ = b.file.Close()
		b.file = nil
	}
}
