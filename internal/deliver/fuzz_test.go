package deliver

import (
	"bytes"
	"testing"
)

// scanReference is a slow, obvious version of ScanBody's byte checks.
func scanReference(b []byte) (eight, binary, long bool) {
	for i, c := range b {
		switch {
		case c > 127:
			eight = true
		case c == 0:
			binary = true
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			binary = true
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			binary = true
		}
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSuffix(line, []byte("\r"))) > maxLine || len(bytes.ReplaceAll(line, []byte("\r"), nil)) > maxLine {
			long = true
		}
	}
	return
}

// FuzzScanBody compares ScanBody with the reference on arbitrary input.
func FuzzScanBody(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("A: \xc3\xa9\r\n\r\n\x00\r\r\n\n"))
	f.Add(bytes.Repeat([]byte("y"), 1000))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ScanBody(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		eight, binary, long := scanReference(b)
		if s.EightBit != eight || s.Binary != binary || s.Size != int64(len(b)) {
			t.Fatalf("ScanBody(%q) = %+v; reference eight=%v binary=%v", b, s, eight, binary)
		}
		// Long-line detection may differ from the reference only where a
		// bare CR splits a line; such content is binary anyway.
		if s.LongLines != long && !binary {
			t.Fatalf("ScanBody(%q) long=%v, reference %v", b, s.LongLines, long)
		}
		if s.HeaderUTF8 && !s.EightBit {
			t.Fatalf("header 8-bit without 8-bit content")
		}
	})
}
