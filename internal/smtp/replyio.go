package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrMalformedReply is returned, wrapped with the offending line, when a
// server's reply does not follow RFC 5321 §4.2.
var ErrMalformedReply = errors.New("smtp: malformed reply")

// Limits that keep a hostile server from making ReadReply hold unbounded
// memory. RFC 5321 §4.5.3.1.5 sets 512 octets per reply line; real servers
// exceed it, so the limits are generous.
const (
	maxReplyLine  = 64 << 10
	maxReplyLines = 1000
)

// ReadReply reads one possibly multi-line reply (RFC 5321 §4.2):
// "250-first", ..., "250 last". A line may end in CRLF or a bare LF. Every
// line must carry the same three-digit code; a line holding just the code is
// allowed. When the first line's text starts with an enhanced status code
// (RFC 2034 §4) whose class matches the reply code's first digit, it is
// stored in Reply.Enhanced and removed from every line that repeats it.
// A malformed line gives an error wrapping ErrMalformedReply; an I/O error
// is returned wrapped (io.ErrUnexpectedEOF when the connection ends inside a
// reply, io.EOF when it ends before one).
func ReadReply(r *bufio.Reader) (Reply, error) {
	var rep Reply
	for n := 0; ; n++ {
		line, err := readReplyLine(r)
		if err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Reply{}, fmt.Errorf("smtp: reading reply: %w", err)
		}
		if n >= maxReplyLines {
			return Reply{}, fmt.Errorf("%w: more than %d lines", ErrMalformedReply, maxReplyLines)
		}
		code, more, text, err := splitReplyLine(line)
		if err != nil {
			return Reply{}, err
		}
		if n == 0 {
			rep.Code = code
		} else if code != rep.Code {
			return Reply{}, fmt.Errorf("%w: code %d in a %d reply: %q", ErrMalformedReply, code, rep.Code, truncate(line))
		}
		rep.Lines = append(rep.Lines, text)
		if !more {
			break
		}
	}
	stripEnhanced(&rep)
	return rep, nil
}

// readReplyLine reads one line without its CRLF (or bare LF), refusing lines
// over maxReplyLine octets.
func readReplyLine(r *bufio.Reader) ([]byte, error) {
	var long []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if err == nil || err == bufio.ErrBufferFull {
			if len(long)+len(chunk) > maxReplyLine+2 {
				return nil, fmt.Errorf("%w: line longer than %d octets", ErrMalformedReply, maxReplyLine)
			}
		}
		switch err {
		case nil:
			if long != nil {
				chunk = append(long, chunk...)
			}
			chunk = chunk[:len(chunk)-1]
			if n := len(chunk); n > 0 && chunk[n-1] == '\r' {
				chunk = chunk[:n-1]
			}
			return chunk, nil
		case bufio.ErrBufferFull:
			long = append(long, chunk...)
		default:
			if len(long)+len(chunk) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// splitReplyLine splits "ddd-text", "ddd text" or "ddd" into its parts.
func splitReplyLine(line []byte) (code int, more bool, text string, err error) {
	if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) ||
		line[0] < '2' || line[0] > '5' {
		return 0, false, "", fmt.Errorf("%w: %q", ErrMalformedReply, truncate(line))
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case '-':
		more = true
	case ' ':
	default:
		return 0, false, "", fmt.Errorf("%w: %q", ErrMalformedReply, truncate(line))
	}
	return code, more, replyText(line[4:]), nil
}

// replyText returns a reply line's text with every control octet (HT
// included) as a space, the form Format sends it in, so that a reply read,
// formatted and read again is the same reply: an enhanced code followed by
// a NUL or HT is then recognised on the first reading as on the second.
func replyText(b []byte) string {
	out := []byte(nil)
	for i, c := range b {
		if c < 32 || c == 127 {
			if out == nil {
				out = append([]byte(nil), b...)
			}
			out[i] = ' '
		}
	}
	if out == nil {
		return string(b)
	}
	return string(out)
}

// stripEnhanced moves a leading enhanced status code from the reply's lines
// into rep.Enhanced (RFC 2034 §4).
func stripEnhanced(rep *Reply) {
	if len(rep.Lines) == 0 {
		return
	}
	tok, _, _ := cutSpace(rep.Lines[0])
	e := EnhancedCode(tok)
	if !e.Valid() || e.Class() != rep.Code/100 {
		return
	}
	rep.Enhanced = e
	for i, l := range rep.Lines {
		if t, rest, _ := cutSpace(l); t == tok {
			rep.Lines[i] = rest
		}
	}
}

// cutSpace splits s at the first space.
func cutSpace(s string) (before, after string, found bool) {
	i := 0
	for i < len(s) && s[i] != ' ' {
		i++
	}
	if i == len(s) {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// truncate shortens a line for an error message.
func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Format returns the reply in wire form (RFC 5321 §4.2): one line per text
// line, each "ddd-" except the last "ddd ", each ending in CRLF. With
// withEnhanced, every line starts with the enhanced code (RFC 2034 §4); a
// server sends them only after advertising ENHANCEDSTATUSCODES. A reply
// without lines is sent as "ddd" or "ddd x.y.z". CR, LF and other control
// characters in the text are sent as spaces so text can never end a line
// early; an invalid enhanced code is left out, and a code outside 200-599
// is sent as 451 (a local error) rather than as a broken line.
func (r Reply) Format(withEnhanced bool) []byte {
	code := strconv.Itoa(r.Code)
	if r.Code < 200 || r.Code > 599 {
		code = "451" // not a reply code; never send a broken line
	}
	enh := ""
	if withEnhanced && r.Enhanced.Valid() {
		enh = string(r.Enhanced)
	}
	lines := r.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	var b bytes.Buffer
	for i, l := range lines {
		b.WriteString(code)
		sep := byte(' ')
		if i < len(lines)-1 {
			sep = '-'
		}
		if enh == "" && l == "" {
			if sep == '-' {
				b.WriteByte(sep)
			}
			b.WriteString("\r\n")
			continue
		}
		b.WriteByte(sep)
		b.WriteString(enh)
		if enh != "" && l != "" {
			b.WriteByte(' ')
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if c < 32 || c == 127 {
				c = ' '
			}
			b.WriteByte(c)
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// WriteTo writes the reply in wire form with its enhanced code, as Format(true)
// gives it. It implements io.WriterTo.
func (r Reply) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.Format(true))
	if err != nil {
		return int64(n), fmt.Errorf("smtp: writing reply %d: %w", r.Code, err)
	}
	return int64(n), nil
}

// Class returns the reply's first digit (RFC 5321 §4.2.1): 2 positive
// completion, 3 positive intermediate, 4 transient, 5 permanent.
func (r Reply) Class() int { return r.Code / 100 }
