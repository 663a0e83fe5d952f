package testrelay

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// MaxLine is the longest line SMTP allows, without its CRLF (RFC 5321
// §4.5.3.1.6).
const MaxLine = 998

// maxProblems is how many problems a checker lists before it stops.
const maxProblems = 10

// Check7Bit fails the test (without stopping it) for every problem
// Problems7Bit finds in data; name prefixes each failure.
func Check7Bit(t testing.TB, name string, data []byte) {
	t.Helper()
	for _, p := range Problems7Bit(data) {
		t.Errorf("%s: %s", name, p)
	}
}

// CheckLines fails the test (without stopping it) for every problem
// ProblemsLines finds in data; name prefixes each failure.
func CheckLines(t testing.TB, name string, data []byte) {
	t.Helper()
	for _, p := range ProblemsLines(data) {
		t.Errorf("%s: %s", name, p)
	}
}

// Problems7Bit returns what makes data unfit for a hop without 8BITMIME:
// an octet above 127 or a NUL (RFC 6152 §3, RFC 2045 §2.7), and everything
// ProblemsLines reports. Nil means valid 7-bit SMTP content.
func Problems7Bit(data []byte) []string { return wireProblems(data, true) }

// ProblemsLines returns what makes data unfit for any SMTP hop: a line
// over 998 octets (RFC 5321 §4.5.3.1.6), a bare CR or LF (RFC 5321 §2.3.8,
// RFC 5322 §2.3), content that does not end with CRLF. Nil means none.
func ProblemsLines(data []byte) []string { return wireProblems(data, false) }

// wireProblems lists at most maxProblems problems, then "…".
func wireProblems(data []byte, sevenBit bool) []string {
	var p []string
	lineStart, line := 0, 1
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case sevenBit && (c > 127 || c == 0):
			p = append(p, fmt.Sprintf("line %d: octet 0x%02X at offset %d: not 7-bit; context %q", line, c, i, data[max(0, i-40):min(len(data), i+40)]))
		case c == '\r' && (i+1 >= len(data) || data[i+1] != '\n'):
			p = append(p, fmt.Sprintf("line %d: bare CR at offset %d", line, i))
		case c == '\n' && (i == 0 || data[i-1] != '\r'):
			p = append(p, fmt.Sprintf("line %d: bare LF at offset %d", line, i))
		}
		if c == '\n' {
			if n := i - lineStart - 1; n > MaxLine {
				p = append(p, fmt.Sprintf("line %d: %d octets, more than %d", line, n, MaxLine))
			}
			lineStart, line = i+1, line+1
		}
		if len(p) > maxProblems {
			return append(p, "…")
		}
	}
	if n := len(data) - lineStart; n > MaxLine {
		p = append(p, fmt.Sprintf("line %d: %d octets, more than %d", line, n, MaxLine))
	}
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		p = append(p, "content does not end with CRLF")
	}
	return p
}

// LongestLine returns the length of data's longest line, without its CRLF.
func LongestLine(data []byte) int {
	n := 0
	for _, line := range bytes.Split(data, []byte("\r\n")) {
		n = max(n, len(line))
	}
	return n
}

// StripFirstField splits off the first header field of data, with its
// folded continuation lines (RFC 5322 §2.2.3).
func StripFirstField(data []byte) (field, rest []byte) {
	i := 0
	for {
		j := bytes.Index(data[i:], []byte("\r\n"))
		if j < 0 {
			return data, nil
		}
		i += j + 2
		if i >= len(data) || (data[i] != ' ' && data[i] != '\t') {
			return data[:i], data[i:]
		}
	}
}

// StripTrace returns data without the trace fields relays put at its top
// (Received, and Return-Path should one appear; RFC 5321 §4.4), and how
// many Received fields it removed.
func StripTrace(data []byte) ([]byte, int) {
	received := 0
	for range 100 {
		i := bytes.IndexByte(data, ':')
		nl := bytes.Index(data, []byte("\r\n"))
		if i < 0 || nl < 0 || i > nl {
			break
		}
		name := string(data[:i])
		if !strings.EqualFold(name, "Received") && !strings.EqualFold(name, "Return-Path") {
			break
		}
		if strings.EqualFold(name, "Received") {
			received++
		}
		field, rest := StripFirstField(data)
		if len(field) == 0 {
			break
		}
		data = rest
	}
	return data, received
}

// FirstDiff returns the offset of the first octet where a and b differ
// (the shorter length when one is a prefix of the other).
func FirstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Clip shortens p to 200 octets (and "…") for a failure message.
func Clip(p []byte) []byte {
	if len(p) > 200 {
		return append(p[:200:200], "…"...)
	}
	return p
}
