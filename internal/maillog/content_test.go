package maillog

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestContentLines: content is recorded line by line without line breaks,
// split across writes, never redacted (a body line may start with "AUTH"),
// cut at maxContentLine, with a last unterminated line on Flush.
func TestContentLines(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	tr := NewTranscript(w, func() time.Time { return time.Unix(0, 0) })
	cl := tr.ContentLines()
	long := strings.Repeat("x", maxContentLine+5)
	for _, p := range []string{"Subject: hi\r\n\r\nAUTH PLAIN dGVzdA", "==\r\nsplit", " line\r\n", long, "\r\ntail"} {
		cl.Write([]byte(p))
	}
	cl.Flush()
	tr.Close()
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		_, text, _ := strings.Cut(l, " ")
		got = append(got, text)
	}
	// The long line is written when it outgrows maxContentLine, before its
	// line break arrives; the break then ends an empty remainder.
	want := []string{"C: Subject: hi", "C: ", "C: AUTH PLAIN dGVzdA==", "C: split line", "C: " + long, "C: ", "C: tail"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := cl.Octets(); n != int64(len("Subject: hi\r\n\r\nAUTH PLAIN dGVzdA==\r\nsplit line\r\n")+len(long)+len("\r\ntail")) {
		t.Errorf("Octets = %d", n)
	}
	var none *Transcript
	counter := none.ContentLines()
	counter.Write([]byte("abc\r\n"))
	counter.Flush()
	if counter.Octets() != 5 {
		t.Errorf("nil transcript: Octets = %d, want 5", counter.Octets())
	}
}
