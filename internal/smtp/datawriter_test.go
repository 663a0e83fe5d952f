package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// canonical returns content as the DATA writer and reader see it: every
// bare CR or LF becomes CRLF, and non-empty content ends in CRLF.
func canonical(s string) string {
	out := normalizeNewlines(s)
	if out != "" && !strings.HasSuffix(out, "\r\n") {
		out += "\r\n"
	}
	return out
}

// normalizeNewlines turns every bare CR or LF in s into CRLF.
func normalizeNewlines(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n':
			b.WriteString("\r\n")
			i++
		case s[i] == '\r' || s[i] == '\n':
			b.WriteString("\r\n")
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func TestDataWriter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ".\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{"a", "a\r\n.\r\n"},
		{".", "..\r\n.\r\n"},
		{".\r\n", "..\r\n.\r\n"},
		{"a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n"},
		{"a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n"},
		{"a\r.\rb\r", "a\r\n..\r\nb\r\n.\r\n"},
		{"a\r\r\n", "a\r\n\r\n.\r\n"},
		{"..x\r\n", "...x\r\n.\r\n"},
		{"a.b\r\n", "a.b\r\n.\r\n"},
		{"\n", "\r\n.\r\n"},
		{"\r", "\r\n.\r\n"},
		{"x\r", "x\r\n.\r\n"},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 2, 3, 1 << 20} {
			var out bytes.Buffer
			w := NewDataWriter(&out)
			for s := tc.in; s != ""; {
				n := min(chunk, len(s))
				if _, err := io.WriteString(w, s[:n]); err != nil {
					t.Fatal(err)
				}
				s = s[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("%q in chunks of %d: got %q, want %q", tc.in, chunk, out.String(), tc.want)
			}
		}
	}
}

func TestDataWriterRoundTrip(t *testing.T) {
	inputs := []string{
		"", "x", ".", "..", "\r\n.\r\n", "a\n.\n", "a\r.\r", "\r\n\r\n", ".\r\n.\r\n.\r\n",
		"Subject: t\r\n\r\n.hidden\r\n..\r\nend",
		strings.Repeat("line of text\r\n.dot\r\n", 5000) + strings.Repeat("z", 100000),
	}
	for _, in := range inputs {
		var wire bytes.Buffer
		w := NewDataWriter(&wire)
		if _, err := io.WriteString(w, in); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wire.WriteString("QUIT\r\n")
		got, err, rest := readData(t, &wire, 4096, DataOptions{Bare: BareReject})
		if err != nil || got != canonical(in) || rest != "QUIT\r\n" {
			t.Errorf("%.40q: read back %.40q, %v, rest %q", in, got, err, rest)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("broken pipe")
	}
	f.n--
	return len(p), nil
}

func TestDataWriterErrors(t *testing.T) {
	w := NewDataWriter(&failWriter{n: 0})
	big := bytes.Repeat([]byte("abc\r\n"), 20000)
	if _, err := w.Write(big); err == nil {
		t.Fatal("write error not reported")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("error not sticky")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after failure returned nil")
	}
	w = NewDataWriter(io.Discard)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("write after Close accepted")
	}
}

func TestDataWriterLargeWrites(t *testing.T) {
	var counter countWriter
	w := NewDataWriter(&counter)
	body := bytes.Repeat([]byte(strings.Repeat("t", 70)+"\r\n"), 15000) // ~1 MiB
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if counter.writes > len(body)/(16<<10)+2 {
		t.Errorf("%d writes for %d octets: output is not buffered", counter.writes, len(body))
	}
	br := bufio.NewReader(bytes.NewReader(counter.buf.Bytes()))
	got, err := io.ReadAll(NewDataReader(br, DataOptions{}))
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("round trip failed: %v", err)
	}
}

type countWriter struct {
	buf    bytes.Buffer
	writes int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.buf.Write(p)
}
