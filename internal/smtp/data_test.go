package smtp

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readData runs a DATA reader over in (read through a bufio.Reader of the
// given size, fed by src) and returns the content, the error that ended it
// and what remains unread after it.
func readData(t *testing.T, src io.Reader, size int, opts DataOptions) (string, error, string) {
	t.Helper()
	br := bufio.NewReaderSize(src, size)
	got, err := io.ReadAll(NewDataReader(br, opts))
	rest, rerr := io.ReadAll(br)
	if rerr != nil {
		t.Fatalf("reading the rest: %v", rerr)
	}
	return string(got), err, string(rest)
}

// smuggling lists end-of-data look-alikes; none may end the data. Each
// input is followed by "b\r\n.\r\nNEXT\r\n", where the real end is.
var smuggling = []struct {
	name, sep, want string
	bare            bool
}{
	{"LF.LF", "\n.\n", "a\r\n.\r\nb\r\n", true},
	{"LF.CRLF", "\n.\r\n", "a\r\n.\r\nb\r\n", true},
	{"CRLF.LF", "\r\n.\n", "a\r\n.\r\nb\r\n", true},
	{"CR.CR", "\r.\r", "a\r\n.\r\nb\r\n", true},
	{"CR.CRLF", "\r.\r\n", "a\r\n.\r\nb\r\n", true},
	{"CRLF.CR", "\r\n.\r", "a\r\n.\r\nb\r\n", true},
	{"LF.CR", "\n.\r", "a\r\n.\r\nb\r\n", true},
	{"CR.LF", "\r.\n", "a\r\n.\r\nb\r\n", true},
	{"CRLF-LF.CRLF", "\r\n\n.\r\n", "a\r\n\r\n.\r\nb\r\n", true},
	{"CRLF-CR.CRLF", "\r\n\r.\r\n", "a\r\n\r\n.\r\nb\r\n", true},
	{"CRLF.CRCRLF", "\r\n.\r\r\n", "a\r\n.\r\n\r\nb\r\n", true},
	{"CRLF..CRLF", "\r\n..\r\n", "a\r\n.\r\nb\r\n", false},
	{"CRLF.SP-CRLF", "\r\n. \r\n", "a\r\n \r\nb\r\n", false},
	{"CRLF.NUL-CRLF", "\r\n.\x00\r\n", "a\r\n\x00\r\nb\r\n", false},
	{"CRLF-SP.CRLF", "\r\n .\r\n", "a\r\n .\r\nb\r\n", false},
}

func TestDataReaderSmuggling(t *testing.T) {
	for _, tc := range smuggling {
		in := "a" + tc.sep + "b\r\n.\r\nNEXT\r\n"
		for _, size := range []int{16, 4096} {
			got, err, rest := readData(t, strings.NewReader(in), size, DataOptions{})
			if err != nil || got != tc.want || rest != "NEXT\r\n" {
				t.Errorf("%s (buf %d): got %q, %v, rest %q; want %q, nil, %q", tc.name, size, got, err, rest, tc.want, "NEXT\r\n")
			}
			// One byte at a time exercises every state across reads.
			got, err, rest = readData(t, iotest.OneByteReader(strings.NewReader(in)), size, DataOptions{})
			if err != nil || got != tc.want || rest != "NEXT\r\n" {
				t.Errorf("%s (one byte): got %q, %v, rest %q", tc.name, got, err, rest)
			}
			_, err, rest = readData(t, strings.NewReader(in), size, DataOptions{Bare: BareReject})
			if tc.bare != errors.Is(err, ErrBareNewline) || rest != "NEXT\r\n" {
				t.Errorf("%s reject: err %v, rest %q; want bare error %v and rest %q", tc.name, err, rest, tc.bare, "NEXT\r\n")
			}
		}
	}
}

func TestDataReader(t *testing.T) {
	tests := []struct {
		name, in, want, rest string
	}{
		{"empty message", ".\r\nQUIT\r\n", "", "QUIT\r\n"},
		{"one line", "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", "Subject: x\r\n\r\nbody\r\n", "QUIT\r\n"},
		{"dot-unstuffing", "..x\r\n...\r\n..\r\n.\r\n", ".x\r\n..\r\n.\r\n", ""},
		{"dot mid-line kept", "a.b\r\n a\r\n.\r\n", "a.b\r\n a\r\n", ""},
		{"first line stuffed", "..\r\n.\r\n", ".\r\n", ""},
		{"empty lines", "\r\n\r\n.\r\n", "\r\n\r\n", ""},
		{"bare LF normalized", "a\nb\n\r\n.\r\n", "a\r\nb\r\n\r\n", ""},
		{"bare CR normalized", "a\rb\r\r\n.\r\n", "a\r\nb\r\n\r\n", ""},
		{"unstuff after bare LF", "a\n..b\r\n.\r\n", "a\r\n.b\r\n", ""},
		{"pipelined after end", "x\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\n", "x\r\n", "MAIL FROM:<>\r\nRCPT TO:<a@b>\r\n"},
		{"bare CR before the real end", "a\r\r\n.\r\nb\r\n", "a\r\n\r\n", "b\r\n"},
		{"8-bit and NUL", "\xff\x00\xe9\r\n.\r\n", "\xff\x00\xe9\r\n", ""},
	}
	for _, tc := range tests {
		for _, size := range []int{16, 64, 4096} {
			got, err, rest := readData(t, strings.NewReader(tc.in), size, DataOptions{})
			if err != nil || got != tc.want || rest != tc.rest {
				t.Errorf("%s (buf %d): got %q, %v, rest %q; want %q, rest %q", tc.name, size, got, err, rest, tc.want, tc.rest)
			}
		}
	}
}

func TestDataReaderLongLine(t *testing.T) {
	line := strings.Repeat("x", 1<<20)
	got, err, rest := readData(t, strings.NewReader(line+"\r\n.\r\nQUIT\r\n"), 4096, DataOptions{})
	if err != nil || got != line+"\r\n" || rest != "QUIT\r\n" {
		t.Fatalf("got %d octets, %v, rest %q", len(got), err, rest)
	}
}

func TestDataReaderBareReject(t *testing.T) {
	in := "line one\r\nline\ntwo\r\n.\r\nQUIT\r\n"
	_, err, rest := readData(t, strings.NewReader(in), 4096, DataOptions{Bare: BareReject})
	if !errors.Is(err, ErrBareNewline) {
		t.Fatalf("err = %v, want ErrBareNewline", err)
	}
	if !strings.Contains(err.Error(), "bare LF at octet 14") {
		t.Errorf("error %q does not say where", err)
	}
	if rest != "QUIT\r\n" {
		t.Errorf("rest %q: reader did not drain to the end of data", rest)
	}
	_, err, _ = readData(t, strings.NewReader("ab\rc\r\n.\r\n"), 4096, DataOptions{Bare: BareReject})
	if err == nil || !strings.Contains(err.Error(), "bare CR at octet 2") {
		t.Errorf("bare CR: err = %v", err)
	}
	got, err, _ := readData(t, strings.NewReader("clean\r\n.\r\n"), 4096, DataOptions{Bare: BareReject})
	if err != nil || got != "clean\r\n" {
		t.Errorf("clean message with reject: %q, %v", got, err)
	}
}

func TestDataReaderSizeLimit(t *testing.T) {
	body := strings.Repeat("0123456789abcde\r\n", 100) // 1700 octets
	in := body + ".\r\nQUIT\r\n"
	for _, limit := range []int64{1, 16, 1699} {
		got, err, rest := readData(t, strings.NewReader(in), 64, DataOptions{MaxSize: limit})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("limit %d: err = %v, want ErrTooLarge", limit, err)
		}
		// The content up to the limit, without half a CRLF at its end.
		if want := strings.TrimSuffix(body[:limit], "\r"); got != want {
			t.Errorf("limit %d: returned %d octets, want %d", limit, len(got), len(want))
		}
		if rest != "QUIT\r\n" {
			t.Errorf("limit %d: rest %q, not drained", limit, rest)
		}
	}
	got, err, _ := readData(t, strings.NewReader(in), 64, DataOptions{MaxSize: 1700})
	if err != nil || got != body {
		t.Errorf("exact limit: %d octets, %v", len(got), err)
	}
	// The limit counts output octets: normalized bare LFs count as two.
	_, err, _ = readData(t, strings.NewReader("a\nb\n\r\n.\r\n"), 64, DataOptions{MaxSize: 5})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("normalized size: err = %v", err)
	}
}

func TestDataReaderUnexpectedEOF(t *testing.T) {
	for _, in := range []string{"", "abc", "abc\r\n", "abc\r\n.", "abc\r\n.\r", "abc\n.\n"} {
		_, err, _ := readData(t, strings.NewReader(in), 4096, DataOptions{})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: err = %v, want io.ErrUnexpectedEOF", in, err)
		}
	}
	timeout := errors.New("i/o timeout")
	br := bufio.NewReader(io.MultiReader(strings.NewReader("abc\r\n"), iotest.ErrReader(timeout)))
	r := NewDataReader(br, DataOptions{})
	if _, err := io.ReadAll(r); !errors.Is(err, timeout) {
		t.Errorf("err = %v, want the underlying error wrapped", err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, timeout) {
		t.Errorf("error not sticky: %v", err)
	}
}

func TestDataReaderSmallReads(t *testing.T) {
	in := "..a\r\nb\nc\r\n.\r\nX"
	r := NewDataReader(bufio.NewReader(strings.NewReader(in)), DataOptions{})
	var out []byte
	p := make([]byte, 1)
	for range 100 {
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(out) != ".a\r\nb\r\nc\r\n" {
		t.Errorf("got %q", out)
	}
	if n, err := r.Read(p); n != 0 || err != io.EOF {
		t.Errorf("after end: %d, %v", n, err)
	}
}
