package loadgen

import (
	"bytes"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"4096", 4096, true},
		{"4KiB", 4096, true},
		{"4k", 4096, true},
		{"64KiB", 65536, true},
		{"1MiB", 1 << 20, true},
		{"2 MB", 2 << 20, true},
		{"100b", 100, true},
		{"0", 0, false},
		{"-4k", 0, false},
		{"4GiB", 0, false},
		{"lots", 0, false},
		{"65MiB", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, s := range []string{"ascii", "8bit", "BINARY"} {
		if _, err := ParseKind(s); err != nil {
			t.Errorf("ParseKind(%q): %v", s, err)
		}
	}
	if _, err := ParseKind("utf16"); err == nil {
		t.Error("ParseKind(utf16) succeeded")
	}
}

func TestTemplate(t *testing.T) {
	for _, tc := range []struct {
		kind     Kind
		size     int
		eightBit bool
	}{
		{KindASCII, 4096, false},
		{Kind8Bit, 4096, true},
		{KindBinary, 4096, false},
		{KindASCII, 65536, false},
		{KindBinary, 200, false}, // smaller than the headers: still well formed
	} {
		tm, err := newTemplate(tc.kind, tc.size, "run1", "a@b.example", "c@d.example")
		if err != nil {
			t.Fatalf("%s/%d: %v", tc.kind, tc.size, err)
		}
		if tc.size >= 4096 && (tm.size < tc.size-128 || tm.size > tc.size+256) {
			t.Errorf("%s/%d: message size %d, want about %d", tc.kind, tc.size, tm.size, tc.size)
		}
		if !bytes.HasSuffix(tm.wire, []byte("\r\n.\r\n")) {
			t.Errorf("%s/%d: wire content does not end with CRLF.CRLF", tc.kind, tc.size)
		}
		if tm.eightBit != tc.eightBit || hasHigh(tm.wire) != tc.eightBit {
			t.Errorf("%s/%d: eightBit %v, high octets %v; want %v", tc.kind, tc.size, tm.eightBit, hasHigh(tm.wire), tc.eightBit)
		}
		if bytes.Contains(tm.wire, []byte("\n.\r\n")) && !bytes.HasSuffix(tm.wire, []byte("\n.\r\n")) {
			t.Errorf("%s/%d: a lone dot line inside the content", tc.kind, tc.size)
		}
		for _, line := range bytes.Split(tm.wire, []byte("\r\n")) {
			if len(line) > 998 {
				t.Fatalf("%s/%d: line of %d octets", tc.kind, tc.size, len(line))
			}
		}
		h := tm.header(42)
		var found bool
		for _, line := range bytes.Split(h, []byte("\r\n")) {
			if id, seq, ok := parseBenchHeader(line); ok {
				found = id == "run1" && seq == 42
			}
		}
		if !found {
			t.Errorf("%s: header %q lacks X-Ferry-Bench: run1 42", tc.kind, h)
		}
	}
}

func TestParseBenchHeader(t *testing.T) {
	for _, tc := range []struct {
		line string
		id   string
		seq  int
		ok   bool
	}{
		{"X-Ferry-Bench: r 7", "r", 7, true},
		{"x-ferry-bench:r   12", "r", 12, true},
		{"X-Ferry-Bench: r", "", 0, false},
		{"X-Ferry-Bench: r -1", "", 0, false},
		{"X-Ferry-Bench: r x", "", 0, false},
		{"Subject: X-Ferry-Bench: r 1", "", 0, false},
		{"X-Ferry", "", 0, false},
	} {
		id, seq, ok := parseBenchHeader([]byte(tc.line))
		if id != tc.id || seq != tc.seq || ok != tc.ok {
			t.Errorf("parseBenchHeader(%q) = %q, %d, %v; want %q, %d, %v", tc.line, id, seq, ok, tc.id, tc.seq, tc.ok)
		}
	}
}
