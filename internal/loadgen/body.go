package loadgen

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Kind is the kind of message body a run sends.
type Kind string

// Body kinds.
const (
	// KindASCII is a text/plain body of 7-bit US-ASCII lines.
	KindASCII Kind = "ascii"
	// Kind8Bit is a text/plain; charset=utf-8 body of mostly-ASCII
	// European text (a few accented letters per line) with
	// Content-Transfer-Encoding: 8bit, sent with BODY=8BITMIME (RFC 6152)
	// when the server offers it. A relay whose next hop lacks 8BITMIME must
	// convert it (RFC 6152 §3).
	Kind8Bit Kind = "8bit"
	// KindBinary is a multipart/mixed message with a short text part and an
	// application/octet-stream attachment of random octets, base64-encoded
	// (RFC 2045 §6.8) as attachments travel in practice.
	KindBinary Kind = "binary"
)

// ParseKind parses "ascii", "8bit" or "binary".
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(s)); k {
	case KindASCII, Kind8Bit, KindBinary:
		return k, nil
	}
	return "", fmt.Errorf("body kind %q: want ascii, 8bit or binary", s)
}

// ParseSize parses a message size such as "4096", "4KiB", "4k", "64KiB" or
// "1MiB" (k and K mean KiB, m and M MiB) into octets.
func ParseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := 1
	lower := strings.ToLower(t)
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"k", 1 << 10}, {"m", 1 << 20}, {"b", 1}} {
		if strings.HasSuffix(lower, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > (64<<20)/mult {
		return 0, fmt.Errorf("message size %q: want a positive number of octets up to 64MiB, optionally with KiB or MiB", s)
	}
	return n * mult, nil
}

// benchHeader is the header field that carries a message's run ID and
// sequence number, so the counting sink can find duplicates and gaps.
const benchHeader = "X-Ferry-Bench"

// template is the content every message of a run shares, and the recipe
// for the per-message header.
type template struct {
	runID    string
	from, to string
	date     string
	eightBit bool
	// wire is the shared part of the content (MIME header fields and the
	// body) dot-stuffed and ending with the terminating ".\r\n", ready to
	// be sent after the per-message header.
	wire []byte
	// size is the message size (header + body, unstuffed) for SIZE=.
	size int
}

// newTemplate builds the shared content of a run's messages so that each
// whole message is about size octets.
func newTemplate(kind Kind, size int, runID, from, to string) (*template, error) {
	t := &template{runID: runID, from: from, to: to, date: time.Now().UTC().Format(time.RFC1123Z)}
	hdrLen := len(t.header(1 << 30))
	var mime, body []byte
	switch kind {
	case KindASCII, "":
		mime = []byte("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
		body = textLines(size-hdrLen-len(mime), asciiLine)
	case Kind8Bit:
		t.eightBit = true
		mime = []byte("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		body = textLines(size-hdrLen-len(mime), utf8Line)
	case KindBinary:
		const boundary = "ferry-bench-boundary"
		mime = []byte("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n" +
			"--" + boundary + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nAttached: random octets.\r\n" +
			"--" + boundary + "\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
			"Content-Disposition: attachment; filename=\"bench.bin\"\r\n\r\n")
		closing := "--" + boundary + "--\r\n"
		room := size - hdrLen - len(mime) - len(closing)
		body = append(base64Lines(room), closing...)
	default:
		return nil, fmt.Errorf("body kind %q: want ascii, 8bit or binary", kind)
	}
	content := append(mime, body...)
	t.size = hdrLen + len(content)
	var wire bytes.Buffer
	dw := smtp.NewDataWriter(&wire)
	if _, err := dw.Write(content); err != nil {
		return nil, fmt.Errorf("encoding body: %w", err)
	}
	if err := dw.Close(); err != nil {
		return nil, fmt.Errorf("encoding body: %w", err)
	}
	t.wire = wire.Bytes()
	return t, nil
}

// header returns the per-message header fields of message seq. They never
// start a line with "." so they need no dot-stuffing.
func (t *template) header(seq int) []byte {
	s := strconv.Itoa(seq)
	b := make([]byte, 0, 256)
	b = append(b, "From: <"+t.from+">\r\nTo: <"+t.to+">\r\nDate: "+t.date+"\r\n"...)
	b = append(b, "Subject: ferry bench message "+s+"\r\n"...)
	b = append(b, "Message-ID: <"+s+"."+t.runID+"@bench.ferry.invalid>\r\n"...)
	b = append(b, benchHeader+": "+t.runID+" "+s+"\r\n"...)
	return b
}

const (
	asciiLine = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs."
	utf8Line  = "Grüße aus Köln: the bakery opens at seven and the coffee costs two euros fifty."
)

// textLines returns about n octets of CRLF lines cut from line, numbered so
// no two lines are alike (a compressing path gains nothing).
func textLines(n int, line string) []byte {
	b := make([]byte, 0, n+len(line)+16)
	for i := 0; len(b) < n; i++ {
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, ' ')
		b = append(b, line...)
		b = append(b, '\r', '\n')
	}
	return b
}

// base64Lines returns about n octets of base64 in 76-column CRLF lines,
// encoding deterministic pseudo-random octets.
func base64Lines(n int) []byte {
	raw := make([]byte, max(n, 0)*3/4)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	b := make([]byte, 0, len(enc)+len(enc)/76*2+2)
	for len(enc) > 76 {
		b = append(b, enc[:76]...)
		b = append(b, '\r', '\n')
		enc = enc[76:]
	}
	if enc != "" {
		b = append(b, enc...)
		b = append(b, '\r', '\n')
	}
	return b
}

// parseBenchHeader reads the value of an X-Ferry-Bench field ("RUNID SEQ")
// from a header line; ok is false when the line is another field.
func parseBenchHeader(line []byte) (runID string, seq int, ok bool) {
	const name = benchHeader + ":"
	if len(line) < len(name) || !bytes.EqualFold(line[:len(name)], []byte(name)) {
		return "", 0, false
	}
	f := strings.Fields(string(line[len(name):]))
	if len(f) != 2 {
		return "", 0, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return f[0], n, true
}
