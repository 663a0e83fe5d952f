package smtpd

import (
	"bytes"
	"io"
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
	if h.buf == nil {
		h.buf = make([]byte, 0, 4096)
	}
	for len(h.buf) < maxHeaderPeek {
		if len(h.buf) == cap(h.buf) {
			h.buf = append(h.buf, 0)[:len(h.buf)]
		}
		from := max(len(h.buf)-3, 0) // an end split across two reads
		n, err := h.r.Read(h.buf[len(h.buf):min(cap(h.buf), maxHeaderPeek)])
		h.buf = h.buf[:len(h.buf)+n]
		if bytes.HasPrefix(h.buf, []byte("\r\n")) || bytes.Contains(h.buf[from:], []byte("\r\n\r\n")) || bytes.Contains(h.buf[from:], []byte("\n\n")) {
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
// and surrounding white space allowed). It allocates only for that field.
func tlsRequiredNo(header []byte) bool {
	if bytes.HasPrefix(header, []byte("\r\n")) || bytes.HasPrefix(header, []byte("\n")) {
		return false // an empty header section: what follows is the body
	}
	if i := bytes.Index(header, []byte("\n\r\n")); i >= 0 {
		header = header[:i+1]
	} else if i := bytes.Index(header, []byte("\n\n")); i >= 0 {
		header = header[:i+1]
	}
	for len(header) > 0 {
		var line []byte
		line, header = cutLine(header)
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte("TLS-Required")) {
			continue
		}
		v := append([]byte(nil), value...)
		for len(header) > 0 && (header[0] == ' ' || header[0] == '\t') {
			line, header = cutLine(header)
			v = append(v, line...)
		}
		if bytes.EqualFold(bytes.TrimSpace(v), []byte("No")) {
			return true
		}
	}
	return false
}

// cutLine splits b after its first LF and returns the line without its
// line end (LF, or CRLF) and the rest.
func cutLine(b []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest
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
