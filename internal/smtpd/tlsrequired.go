package smtpd

import (
	"bytes"
	"io"
	"strings"
)

// maxHeaderPeek bounds how much of a message's header section is read
// ahead, before the store, to find a TLS-Required field.
const maxHeaderPeek = 64 << 10

// headerPeek reads a message's header section ahead of the store, so that
// facts the envelope records (TLS-Required: No, RFC 8689 §5) are known
// before the envelope is written, then gives the store every octet.
type headerPeek struct {
	r   io.Reader
	buf []byte
	err error // a read error met while peeking, returned after buf
}

// peek reads until the empty line that ends the header section, the end
// of the content, an error, or maxHeaderPeek octets, and returns what it
// read.
func (h *headerPeek) peek() []byte {
	chunk := make([]byte, 4096)
	for len(h.buf) < maxHeaderPeek {
		n, err := h.r.Read(chunk)
		h.buf = append(h.buf, chunk[:n]...)
		if bytes.Contains(h.buf, []byte("\r\n\r\n")) || bytes.Contains(h.buf, []byte("\n\n")) || bytes.HasPrefix(h.buf, []byte("\r\n")) {
			break
		}
		if err != nil {
			h.err = err
			break
		}
	}
	return h.buf
}

// Read implements io.Reader: the peeked octets, then the rest.
func (h *headerPeek) Read(p []byte) (int, error) {
	if len(h.buf) > 0 {
		n := copy(p, h.buf)
		h.buf = h.buf[n:]
		return n, nil
	}
	if h.err != nil {
		return 0, h.err
	}
	return h.r.Read(p)
}

// tlsRequiredNo reports whether a header section holds the field
// "TLS-Required: No" (RFC 8689 §5; the value is case-insensitive, folding
// and surrounding white space allowed).
func tlsRequiredNo(header []byte) bool {
	if i := bytes.Index(header, []byte("\n\r\n")); i >= 0 {
		header = header[:i+1]
	} else if i := bytes.Index(header, []byte("\n\n")); i >= 0 {
		header = header[:i+1]
	}
	lines := strings.Split(strings.ReplaceAll(string(header), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		name, value, ok := strings.Cut(lines[i], ":")
		if !ok || !strings.EqualFold(strings.TrimRight(name, " \t"), "TLS-Required") {
			continue
		}
		for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], " ") || strings.HasPrefix(lines[i+1], "\t")) {
			i++
			value += lines[i]
		}
		if strings.EqualFold(strings.TrimSpace(value), "No") {
			return true
		}
	}
	return false
}

// noteHeader reads the header section ahead and records in the envelope
// what it says: TLS-Required: No, unless MAIL FROM had REQUIRETLS, which
// overrides it (RFC 8689 §5).
func (m *pendingMessage) noteHeader() {
	if m.peek == nil {
		return
	}
	h := m.peek.peek()
	if m.env.RequireTLS {
		return
	}
	m.env.TLSOptional = tlsRequiredNo(h)
}
