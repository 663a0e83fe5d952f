package queue

import (
	"bytes"
	"io"
	"testing"
)

// TestSpill: the buffer keeps small content in memory, larger in a file,
// and reads back the same octets each time; with a budget, the memory it
// holds is taken from it, content the budget cannot grant goes to the file
// at once, and Close gives everything back.
func TestSpill(t *testing.T) {
	const limit = 64 << 10
	fill := func(s *Spill, n int) []byte {
		data := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		for off := 0; off < n; off += 7000 {
			if _, err := s.Write(data[off:min(n, off+7000)]); err != nil {
				t.Fatal(err)
			}
		}
		return data
	}
	readBack := func(s *Spill, data []byte) {
		t.Helper()
		for range 2 {
			got, _ := io.ReadAll(s.Reader())
			if !bytes.Equal(got, data) {
				t.Errorf("%d octets: read back %d different octets", len(data), len(got))
			}
		}
	}
	for _, n := range []int{10, limit + 12345} {
		s := NewSpill(nil, t.TempDir(), limit, "test")
		data := fill(s, n)
		if s.InFile() != (n > limit) {
			t.Errorf("%d octets: in file %v", n, s.InFile())
		}
		readBack(s, data)
		s.Close()
	}

	b := NewMemBudget(1 << 20)
	s := NewSpill(b, t.TempDir(), limit, "test")
	data := fill(s, 20000)
	if s.InFile() || b.Held() == 0 || b.Held() > limit {
		t.Errorf("20000 octets in budget: in file %v, budget holds %d", s.InFile(), b.Held())
	}
	readBack(s, data)
	s.Close()
	if b.Held() != 0 {
		t.Errorf("budget holds %d after Close, want 0", b.Held())
	}

	tight := NewMemBudget(1 << 20)
	if !tight.TryAcquire(tight.Total()) {
		t.Fatal("cannot take the whole budget")
	}
	s = NewSpill(tight, t.TempDir(), limit, "test")
	data = fill(s, 100)
	if !s.InFile() {
		t.Error("content in memory though the budget had none to grant")
	}
	readBack(s, data)
	s.Close()
}

// TestSpillBufferReuse: a buffer handed to UseBuffer is filled before any
// allocation and comes back from Detach with the content read back intact;
// content that goes to the file gives no buffer back; a buffer larger than
// the limit is not used.
func TestSpillBufferReuse(t *testing.T) {
	const limit = 64 << 10
	buf := make([]byte, 0, 32<<10)
	s := NewSpill(nil, t.TempDir(), limit, "test")
	s.UseBuffer(buf)
	data := bytes.Repeat([]byte("x"), 20000)
	if _, err := s.Write(data); err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(s.Reader()); !bytes.Equal(got, data) {
		t.Fatal("content read back differs")
	}
	back := s.Detach()
	if len(back) != 0 || cap(back) != cap(buf) || &back[:1][0] != &buf[:1][0] {
		t.Errorf("Detach gave back len %d cap %d, want the handed buffer, empty", len(back), cap(back))
	}

	s = NewSpill(nil, t.TempDir(), limit, "test")
	s.UseBuffer(back)
	if _, err := s.Write(bytes.Repeat([]byte("y"), limit+1)); err != nil {
		t.Fatal(err)
	}
	if !s.InFile() || s.Detach() != nil {
		t.Error("content over the limit: want it in the file and no buffer back")
	}

	s = NewSpill(nil, t.TempDir(), limit, "test")
	s.UseBuffer(make([]byte, 0, 2*limit))
	if _, err := s.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	if b := s.Detach(); cap(b) > limit {
		t.Errorf("a buffer of %d octets over the limit %d was used", cap(b), limit)
	}
}
