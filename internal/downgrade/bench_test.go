package downgrade

import (
	"bytes"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"syscall"
	"testing"
	"time"
)

// benchText returns about 1 MiB of text in 72-column CRLF lines in which
// roughly share of the octets are above 127: two-octet UTF-8 characters
// when utf8 is set, single Latin-1 octets otherwise.
func benchText(share float64, utf8 bool) []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	words := []string{"the", "relay", "converts", "message", "body", "to", "seven", "bit", "mime", "losslessly"}
	var b bytes.Buffer
	col := 0
	for b.Len() < 1<<20 {
		var w []byte
		// An accented word is 6 octets of which 4 are 8-bit (UTF-8) or 3
		// of which 2 are (Latin-1); with the spaces and plain words these
		// factors give the requested share (measured: see share8bit).
		k := 0.63
		if !utf8 {
			k = 0.46
		}
		if rng.Float64() < share/k {
			// A word with accented letters.
			if utf8 {
				w = []byte("d\xc3\xa9j\xc3\xa0")
			} else {
				w = []byte("\xe9t\xe9")
			}
		} else {
			w = []byte(words[rng.IntN(len(words))])
		}
		if col+len(w) > 72 {
			b.WriteString("\r\n")
			col = 0
		}
		if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.Write(w)
		col += len(w)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func benchMessage(ctype, cte string, body []byte) []byte {
	h := "From: a@example.org\r\nTo: b@example.org\r\nSubject: benchmark\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: " + ctype + "\r\n"
	if cte != "" {
		h += "Content-Transfer-Encoding: " + cte + "\r\n"
	}
	return append([]byte(h+"\r\n"), body...)
}

// cpuClock measures the process's CPU time, so that benchmarks on a
// shared, loaded machine can also report throughput per CPU second
// ("cpu-MB/s"), which other processes' load does not dilute.
type cpuClock struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{cpuNow()} }

// report adds the cpu-MB/s metric for b.N operations of size octets.
func (c cpuClock) report(b *testing.B, size int) {
	if d := cpuNow() - c.start; d > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/d.Seconds()/1e6, "cpu-MB/s")
	}
}

func share8bit(b []byte) float64 {
	n := 0
	for _, c := range b {
		if c >= 0x80 {
			n++
		}
	}
	return float64(n) / float64(len(b))
}

func benchConvert(b *testing.B, msg []byte, wantCTE string) {
	b.Helper()
	rep, err := Convert(io.Discard, bytes.NewReader(msg), Options{})
	if err != nil {
		b.Fatal(err)
	}
	got := ""
	if len(rep.Parts) > 0 {
		got = rep.Parts[0].NewCTE
	}
	if got != wantCTE {
		b.Fatalf("converted to %q, want %q", got, wantCTE)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var cv Converter
	clk := startCPU()
	for b.Loop() {
		if _, err := cv.Convert(io.Discard, bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
	clk.report(b, len(msg))
}

// BenchmarkConvertUTF8Text converts 1 MiB of UTF-8 text with about 5 %
// 8-bit octets (quoted-printable).
func BenchmarkConvertUTF8Text(b *testing.B) {
	body := benchText(0.05, true)
	benchConvert(b, benchMessage("text/plain; charset=utf-8", "8bit", body), "quoted-printable")
	b.ReportMetric(share8bit(body)*100, "%8bit")
}

// BenchmarkConvertLatin1Text converts 1 MiB of Latin-1 text with about
// 30 % 8-bit octets (base64: quoted-printable would expand it more).
func BenchmarkConvertLatin1Text(b *testing.B) {
	body := benchText(0.30, false)
	benchConvert(b, benchMessage("text/plain; charset=iso-8859-1", "8bit", body), "base64")
	b.ReportMetric(share8bit(body)*100, "%8bit")
}

// BenchmarkConvertBinary converts 1 MiB of random octets (base64).
func BenchmarkConvertBinary(b *testing.B) {
	body := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	benchConvert(b, benchMessage("application/octet-stream", "binary", body), "base64")
}

// BenchmarkConvertASCII passes 1 MiB of 7-bit text through unchanged.
func BenchmarkConvertASCII(b *testing.B) {
	benchConvert(b, benchMessage("text/plain; charset=us-ascii", "7bit", benchText(0, true)), "")
}

// BenchmarkScanASCII runs Scan over 1 MiB of 7-bit text.
func BenchmarkScanASCII(b *testing.B) {
	msg := benchMessage("text/plain; charset=us-ascii", "7bit", benchText(0, true))
	b.SetBytes(int64(len(msg)))
	clk := startCPU()
	for b.Loop() {
		if _, err := Scan(bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
	clk.report(b, len(msg))
}

// BenchmarkQPEncoderUTF8Text is the quoted-printable encoder alone on the
// text of BenchmarkConvertUTF8Text.
func BenchmarkQPEncoderUTF8Text(b *testing.B) {
	body := benchText(0.05, true)
	var e qpEncoder
	b.SetBytes(int64(len(body)))
	clk := startCPU()
	for b.Loop() {
		if _, _, err := e.encode(io.Discard, nil, body, false); err != nil {
			b.Fatal(err)
		}
	}
	clk.report(b, len(body))
}

// BenchmarkStdlibQPWriterUTF8Text is the baseline: the standard library's
// quotedprintable.Writer on the same text.
func BenchmarkStdlibQPWriterUTF8Text(b *testing.B) {
	body := benchText(0.05, true)
	b.SetBytes(int64(len(body)))
	clk := startCPU()
	defer func() { clk.report(b, len(body)) }()
	for b.Loop() {
		w := quotedprintable.NewWriter(io.Discard)
		if _, err := w.Write(body); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
