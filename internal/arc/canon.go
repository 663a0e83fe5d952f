package arc

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// relaxedHeader canonicalizes one raw header field (RFC 6376 §3.4.2): the
// name lower-cased, the value unfolded, runs of white space made one space,
// white space around the colon and at the end removed; then CRLF.
func relaxedHeader(raw string) string {
	name, value, _ := strings.Cut(raw, ":")
	value = strings.ReplaceAll(value, "\r\n", "")
	value = strings.ReplaceAll(value, "\n", "")
	return strings.ToLower(strings.TrimRight(name, " \t")) + ":" + strings.Join(strings.FieldsFunc(value, isWSP), " ") + "\r\n"
}

func isWSP(r rune) bool { return r == ' ' || r == '\t' }

// relaxedBody writes the relaxed canonical form of the body read from r to
// w (RFC 6376 §3.4.4): white space at line ends removed, runs of white
// space made one space, empty lines at the end removed, and a final CRLF
// when the body is not empty.
func relaxedBody(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 32<<10)
	bw := bufio.NewWriterSize(w, 32<<10)
	var empty int // empty lines held back: written only if more text follows
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			canon := compressWSP(line)
			if len(canon) == 0 {
				empty++
			} else {
				for ; empty > 0; empty-- {
					bw.WriteString("\r\n")
				}
				bw.Write(canon)
				bw.WriteString("\r\n")
			}
		}
		if err == io.EOF {
			return bw.Flush()
		}
		if err != nil {
			return err
		}
	}
}

// compressWSP makes runs of white space one space and drops white space at
// the end of the line.
func compressWSP(line []byte) []byte {
	out := make([]byte, 0, len(line))
	ws := false
	for _, b := range line {
		if b == ' ' || b == '\t' {
			ws = true
			continue
		}
		if ws {
			out = append(out, ' ')
		}
		ws = false
		out = append(out, b)
	}
	return out
}

// stripB returns a signature field with the value of its b= tag removed,
// as the signature input needs it (RFC 6376 §3.7).
func stripB(raw string) string {
	// Find "b=" as a tag name: at the start of the value or after ';',
	// with optional white space.
	_, value, _ := strings.Cut(raw, ":")
	off := len(raw) - len(value)
	i := 0
	for i < len(value) {
		j := i
		for j < len(value) && (value[j] == ' ' || value[j] == '\t' || value[j] == '\r' || value[j] == '\n') {
			j++
		}
		if j+1 < len(value) && value[j] == 'b' && (value[j+1] == '=' || value[j+1] == ' ' || value[j+1] == '\t') {
			k := j + 1
			for k < len(value) && (value[k] == ' ' || value[k] == '\t') {
				k++
			}
			if k < len(value) && value[k] == '=' {
				end := strings.IndexByte(value[k:], ';')
				if end < 0 {
					end = len(value) - k
					// keep a final CRLF if there is one
					if strings.HasSuffix(value, "\r\n") {
						end -= 2
					}
				}
				return raw[:off+k+1] + value[k+end:]
			}
		}
		next := strings.IndexByte(value[i:], ';')
		if next < 0 {
			break
		}
		i += next + 1
	}
	return raw
}
