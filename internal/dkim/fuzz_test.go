package dkim_test

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/dkim"
)

// FuzzReadHeader: ReadHeader never panics, its fields put back together
// are the header octets it returned, and WithoutFields of nothing gives
// back the message unchanged.
func FuzzReadHeader(f *testing.F) {
	f.Add("From: a@example.org\r\nSubject: x\r\n folded\r\n\r\nbody\r\n")
	f.Add("no colon\r\n\tcontinued\r\n")
	f.Add(" leading space\n\n")
	f.Add("DKIM-Signature: v=1; d=example.org; s=s; b=\r\n\t AAAA\r\nFrom: <a@[127.0.0.1]>\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		fields, head, err := dkim.ReadHeader(bufio.NewReader(strings.NewReader(msg)))
		if err != nil {
			return
		}
		var joined strings.Builder
		for _, fl := range fields {
			joined.WriteString(fl.Raw)
			_ = fl.Value()
		}
		if !strings.HasPrefix(string(head), joined.String()) {
			t.Fatalf("fields %q are not the start of the header %q", joined.String(), head)
		}
		_ = dkim.FromDomain(fields)
		_ = dkim.Signed(fields)
		out, _ := io.ReadAll(dkim.WithoutFields(strings.NewReader(msg), nil))
		if !bytes.Equal(out, []byte(msg)) {
			t.Fatalf("WithoutFields(nil) changed the message: %q → %q", msg, out)
		}
	})
}
