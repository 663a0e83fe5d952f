package smtp

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// textBody returns about 1 MiB of CRLF text with varied line lengths and
// some lines that need dot-stuffing.
func textBody() []byte {
	var b bytes.Buffer
	words := strings.Fields("the quick brown fox jumps over the lazy dog and keeps running through the field")
	for i := 0; b.Len() < 1<<20; i++ {
		if i%50 == 0 {
			b.WriteString(".")
		}
		n := 5 + i%12
		for j := range n {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[(i+j)%len(words)])
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func BenchmarkDataReader(b *testing.B) {
	body := textBody()
	var wire bytes.Buffer
	w := NewDataWriter(&wire)
	w.Write(body)
	w.Close()
	in := wire.Bytes()
	src := bytes.NewReader(in)
	br := bufio.NewReaderSize(src, 64<<10)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		src.Reset(in)
		br.Reset(src)
		r := NewDataReader(br, DataOptions{MaxSize: 10 << 20})
		n := 0
		for {
			m, err := r.Read(buf)
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if n != len(body) {
			b.Fatalf("read %d octets, want %d", n, len(body))
		}
	}
}

func BenchmarkDataWriter(b *testing.B) {
	body := textBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		w := NewDataWriter(io.Discard)
		if _, err := w.Write(body); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
