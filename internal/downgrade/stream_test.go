package downgrade

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"runtime"
	"strings"
	"testing"
)

// genReader produces n deterministic octets, whatever the read sizes:
// random binary, or UTF-8 text in CRLF lines.
type genReader struct {
	n    int64
	x    uint64
	text bool
	col  int
	pend byte // the second octet of a pair, due next
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n)]
	for i := range p {
		g.x ^= g.x << 13
		g.x ^= g.x >> 7
		g.x ^= g.x << 17
		switch {
		case !g.text:
			p[i] = byte(g.x)
		case g.pend != 0:
			p[i], g.pend = g.pend, 0
		case g.col >= 70:
			p[i], g.pend, g.col = '\r', '\n', 0
		case g.x%23 == 0:
			p[i], g.pend, g.col = 0xc3, 0xa9, g.col+2
		default:
			p[i] = "abcdefgh ij"[g.x%11]
			g.col++
		}
	}
	g.n -= int64(len(p))
	return len(p), nil
}

func bigMessage(size int64) io.Reader {
	return io.MultiReader(
		strings.NewReader("From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=big\r\n\r\n"+
			"--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"),
		&genReader{n: size / 2, x: 1},
		strings.NewReader("\r\n--big\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"),
		&genReader{n: size / 2, x: 2, text: true},
		strings.NewReader("\r\n--big--\r\n"),
	)
}

func digest(r io.Reader) ([32]byte, error) {
	h := sha256.New()
	_, err := io.Copy(h, r)
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d, err
}

// TestLargeMessageStreams converts a 50 MB message with a small memory
// limit (so leaves spill to temporary files), checks that the converter
// allocated far less than the message size, and decodes the output as a
// stream with the standard library to compare digests of each leaf.
func TestLargeMessageStreams(t *testing.T) {
	size := int64(50 << 20)
	if testing.Short() {
		size = 4 << 20
	}
	opts := Options{MemoryLimit: 1 << 20, TempDir: t.TempDir()}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := Convert(io.Discard, bigMessage(size), opts)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("converting %d MB allocated %d MB", size>>20, alloc>>20)
	}
	if len(rep.Parts) != 2 || rep.Parts[0].NewCTE != "base64" || rep.Parts[1].NewCTE != "quoted-printable" {
		t.Fatalf("report parts %+v", rep.Parts)
	}

	want := make([][32]byte, 2)
	for i := range want {
		if want[i], err = digest(&genReader{n: size / 2, x: uint64(i + 1), text: i == 1}); err != nil {
			t.Fatal(err)
		}
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := Convert(pw, bigMessage(size), opts)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	m, err := mail.ReadMessage(bufio.NewReader(pr))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for i := 0; ; i++ {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			if i != 2 {
				t.Fatalf("%d parts", i)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var dec io.Reader
		switch cte := p.Header.Get("Content-Transfer-Encoding"); cte {
		case "base64":
			dec = base64.NewDecoder(base64.StdEncoding, p)
		case "quoted-printable":
			dec = quotedprintable.NewReader(p)
		default:
			t.Fatalf("part %d: %s", i, cte)
		}
		got, err := digest(dec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:], want[i][:]) {
			t.Errorf("part %d decodes to other octets", i)
		}
	}
}
