package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseBDATArg(t *testing.T) {
	tests := []struct {
		arg  string
		size int64
		last bool
		ok   bool
	}{
		{"1000", 1000, false, true},
		{"1000 LAST", 1000, true, true},
		{"0 last", 0, true, true},
		{" 42  LAST ", 42, true, true},
		{"", 0, false, false},
		{"LAST", 0, false, false},
		{"-1", 0, false, false},
		{"+1", 0, false, false},
		{"1 2", 0, false, false},
		{"1 LAST x", 0, false, false},
		{"99999999999999999999", 0, false, false},
		{"0x10", 0, false, false},
	}
	for _, tc := range tests {
		size, last, err := ParseBDATArg(tc.arg)
		if (err == nil) != tc.ok || size != tc.size || last != tc.last {
			t.Errorf("ParseBDATArg(%q) = %d, %v, %v", tc.arg, size, last, err)
		}
	}
}

// readChunks runs a BDATReader over chunks sent back to back on one
// connection followed by "NEXT", and returns the content, the last error
// and what remains.
func readChunks(t *testing.T, opts DataOptions, binary bool, chunks ...string) (string, []error, string) {
	t.Helper()
	br := bufio.NewReaderSize(iotest.HalfReader(strings.NewReader(strings.Join(chunks, "")+"NEXT")), 16)
	b := NewBDATReader(opts, binary)
	var out bytes.Buffer
	var errs []error
	for i, c := range chunks {
		_, err := io.Copy(&out, b.Chunk(br, int64(len(c)), i == len(chunks)-1))
		errs = append(errs, err)
	}
	rest, _ := io.ReadAll(br)
	return out.String(), errs, string(rest)
}

func TestBDATReader(t *testing.T) {
	tests := []struct {
		name   string
		opts   DataOptions
		binary bool
		chunks []string
		want   string
		fail   error // expected error of the last chunk
	}{
		{"text", DataOptions{}, false, []string{"a\r\nb", "c\r\n"}, "a\r\nbc\r\n", nil},
		{"no dot handling", DataOptions{}, false, []string{".\r\n", "..x\r\n.\r\n"}, ".\r\n..x\r\n.\r\n", nil},
		{"CRLF split across chunks", DataOptions{Bare: BareReject}, false, []string{"a\r", "\nb\r\n"}, "a\r\nb\r\n", nil},
		{"bare LF normalized", DataOptions{}, false, []string{"a\nb", "\n"}, "a\r\nb\r\n", nil},
		{"bare CR across chunks", DataOptions{}, false, []string{"a\r", "b"}, "a\r\nb", nil},
		{"bare CR at the end", DataOptions{}, false, []string{"a\r"}, "a\r\n", nil},
		{"bare LF rejected", DataOptions{Bare: BareReject}, false, []string{"a\nb", "c\r\n"}, "", ErrBareNewline},
		{"bare CR at the end rejected", DataOptions{Bare: BareReject}, false, []string{"ab", "c\r"}, "abc", ErrBareNewline},
		{"binary untouched", DataOptions{Bare: BareReject}, true, []string{"a\nb\r", "\x00\rc"}, "a\nb\r\x00\rc", nil},
		{"empty last chunk", DataOptions{}, false, []string{"x\r\n", ""}, "x\r\n", nil},
		{"size across chunks", DataOptions{MaxSize: 5}, true, []string{"abc", "def", "ghi"}, "abcde", ErrTooLarge},
		{"size exact", DataOptions{MaxSize: 6}, true, []string{"abc", "def"}, "abcdef", nil},
		{"size counts normalized output", DataOptions{MaxSize: 3}, false, []string{"a\nb"}, "a\r\n", ErrTooLarge},
	}
	for _, tc := range tests {
		got, errs, rest := readChunks(t, tc.opts, tc.binary, tc.chunks...)
		if rest != "NEXT" {
			t.Errorf("%s: rest %q; chunks not read exactly", tc.name, rest)
		}
		if !strings.HasPrefix(got, tc.want) || (tc.fail == nil && got != tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		last := errs[len(errs)-1]
		if tc.fail == nil && last != nil || tc.fail != nil && !errors.Is(last, tc.fail) {
			t.Errorf("%s: errors %v, want %v at the end", tc.name, errs, tc.fail)
		}
	}
	// After a failure every later chunk fails the same way.
	_, errs, _ := readChunks(t, DataOptions{MaxSize: 2}, true, "abc", "d", "e")
	for i, err := range errs {
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("chunk %d: %v", i, err)
		}
	}
}

func TestBDATReaderShortInput(t *testing.T) {
	b := NewBDATReader(DataOptions{}, false)
	_, err := io.ReadAll(b.Chunk(strings.NewReader("abc"), 10, true))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	// One-octet reads still see a CRLF split by the output buffer.
	b = NewBDATReader(DataOptions{}, false)
	r := b.Chunk(strings.NewReader("a\nb"), 3, true)
	var out []byte
	p := make([]byte, 1)
	for range 10 {
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err != nil {
			break
		}
	}
	if string(out) != "a\r\nb" || b.Size() != 4 {
		t.Errorf("one-octet reads: %q, size %d", out, b.Size())
	}
}

func TestBDATWriter(t *testing.T) {
	var wire bytes.Buffer
	var calls []string
	w := NewBDATWriter(&wire, 4, func(size int, last bool) error {
		calls = append(calls, strings.TrimSpace(strings.Repeat("L", btoi(last))+" "+string(rune('0'+size))))
		return nil
	})
	if _, err := io.WriteString(w, "abcdefghij"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "BDAT 4\r\nabcdBDAT 4\r\nefghBDAT 2 LAST\r\nij"
	if wire.String() != want {
		t.Errorf("wire %q, want %q", wire.String(), want)
	}
	if strings.Join(calls, ",") != "4,4,L 2" {
		t.Errorf("callbacks %v", calls)
	}

	wire.Reset()
	w = NewBDATWriter(&wire, 4, nil)
	io.WriteString(w, "abcd")
	w.Close()
	if wire.String() != "BDAT 4 LAST\r\nabcd" {
		t.Errorf("exact chunk: %q", wire.String())
	}

	wire.Reset()
	w = NewBDATWriter(&wire, 0, nil)
	w.Close()
	if wire.String() != "BDAT 0 LAST\r\n" {
		t.Errorf("empty: %q", wire.String())
	}

	stop := errors.New("552 from server")
	w = NewBDATWriter(io.Discard, 2, func(int, bool) error { return stop })
	if _, err := io.WriteString(w, "abcde"); !errors.Is(err, stop) {
		t.Errorf("callback error not returned: %v", err)
	}
	if err := w.Close(); !errors.Is(err, stop) {
		t.Errorf("Close after failure: %v", err)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func FuzzBDATReader(f *testing.F) {
	f.Add([]byte("a\r\nb\nc\rd\r"), uint16(3))
	f.Add([]byte("\r\n\r\n"), uint16(1))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		// Cut the input into chunks of split octets (at least 1).
		n := max(int(split)%(len(in)+1), 1)
		var chunks []string
		for s := string(in); ; {
			k := min(n, len(s))
			chunks = append(chunks, s[:k])
			s = s[k:]
			if s == "" {
				break
			}
		}
		got, errs, rest := readChunks(t, DataOptions{}, false, chunks...)
		if rest != "NEXT" || errs[len(errs)-1] != nil {
			t.Fatalf("text: rest %q, errors %v", rest, errs)
		}
		if want := normalizeNewlines(string(in)); got != want {
			t.Fatalf("text in chunks of %d: %q, want %q", n, got, want)
		}
		checkCanonical(t, []byte(got))
		got, errs, rest = readChunks(t, DataOptions{MaxSize: 5, Bare: BareReject}, true, chunks...)
		if rest != "NEXT" || len(got) > 5 || !strings.HasPrefix(string(in), got) {
			t.Fatalf("binary: %q, rest %q, errors %v", got, rest, errs)
		}
		if (len(in) > 5) != errors.Is(errs[len(errs)-1], ErrTooLarge) {
			t.Fatalf("binary: %d octets, errors %v", len(in), errs)
		}
	})
}
