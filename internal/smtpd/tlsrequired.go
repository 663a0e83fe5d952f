package smtpd

import (
	"bytes"
	"io"
	"slices"
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
// read. It reads into one buffer, grown only for a large header section,
// and looks for the end only in what each read added.
func (h *headerPeek) peek() []byte {
	h.buf = make([]byte, 0, 4096)
	for len(h.buf) < maxHeaderPeek {
		if len(h.buf) == cap(h.buf) {
			h.buf = slices.Grow(h.buf, len(h.buf))
		}
		from := max(len(h.buf)-3, 0) // the end may straddle two reads
		n, err := h.r.Read(h.buf[len(h.buf):cap(h.buf)])
		h.buf = h.buf[:len(h.buf)+n]
		if headerEnded(h.buf, from) {
			break
		}
		if err != nil {
			h.err = err
			break
		}
	}
	return h.buf
}

// headerEnded reports whether b, searched from from on, holds the empty
// line that ends a header section, or b starts with it.
func headerEnded(b []byte, from int) bool {
	tail := b[from:]
	return bytes.Contains(tail, []byte("\r\n\r\n")) || bytes.Contains(tail, []byte("\n\n")) || bytes.HasPrefix(b, []byte("\r\n"))
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
// and surrounding white space allowed). It allocates only for a
// TLS-Required field.
func tlsRequiredNo(header []byte) bool {
	if i := bytes.Index(header, []byte("\n\r\n")); i >= 0 {
		header = header[:i+1]
	} else if i := bytes.Index(header, []byte("\n\n")); i >= 0 {
		header = header[:i+1]
	}
	nextLine := func() []byte {
		line, rest, _ := bytes.Cut(header, []byte("\n"))
		header = rest
		return bytes.TrimSuffix(line, []byte("\r"))
	}
	for len(header) > 0 {
		name, v, ok := bytes.Cut(nextLine(), []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte("TLS-Required")) {
			continue
		}
		value := string(v)
		for len(header) > 0 && (header[0] == ' ' || header[0] == '\t') {
			value += string(nextLine())
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
