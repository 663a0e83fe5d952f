package maillog

import "bytes"

// maxContentLine is the longest content line a transcript holds before it
// is cut: a line without a break is written in pieces of this size.
const maxContentLine = 8 << 10

// ContentLines records message content in a transcript, one "C: " line per
// content line without its line break, as an io.Writer fed the content in
// order. Content is not a command, so nothing in it is redacted. The zero
// value and a ContentLines of a nil transcript count octets only.
type ContentLines struct {
	tr      *Transcript
	pending []byte
	n       int64
}

// ContentLines returns a writer that records content in t line by line.
func (t *Transcript) ContentLines() *ContentLines { return &ContentLines{tr: t} }

// Write records the complete lines of p; it never fails.
func (c *ContentLines) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.tr == nil {
		return len(p), nil
	}
	c.pending = append(c.pending, p...)
	for {
		i := bytes.IndexByte(c.pending, '\n')
		if i < 0 {
			break
		}
		c.tr.line("C: ", string(bytes.TrimSuffix(c.pending[:i], []byte("\r"))))
		c.pending = c.pending[i+1:]
	}
	if len(c.pending) > maxContentLine {
		c.tr.line("C: ", string(c.pending))
		c.pending = c.pending[:0]
	}
	return len(p), nil
}

// Flush records a last line that had no line break.
func (c *ContentLines) Flush() {
	if c.tr != nil && len(c.pending) > 0 {
		c.tr.line("C: ", string(c.pending))
	}
	c.pending = nil
}

// Octets returns how many content octets were written.
func (c *ContentLines) Octets() int64 { return c.n }
