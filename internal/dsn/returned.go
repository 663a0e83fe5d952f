package dsn

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/smtp"
)

// maxHeaderReturn bounds the header section returned in a headers-only
// third part; a longer one is cut at a line end.
const maxHeaderReturn = 64 << 10

// returnKind says how much of the original message a report carries.
type returnKind uint8

const (
	returnNone    returnKind = iota // no third part
	returnHeaders                   // text/rfc822-headers or message/global-headers
	returnFull                      // message/rfc822 or message/global
)

// returnedPart is the third part of a report.
type returnedPart struct {
	kind returnKind
	// data is the part's content, ending in CRLF.
	data []byte
	// eightBit is set when data holds octets above 127 (only in a
	// message/global or message/global-headers part).
	eightBit bool
	// note tells the sender why less than they asked for is returned.
	note string
	// messageID is the original's Message-ID, "<...>", or "".
	messageID string
}

// contentType returns the part's media type (RFC 6522 §3, RFC 6533 §6).
func (p returnedPart) contentType(global bool) string {
	switch {
	case p.kind == returnFull && global:
		return "message/global"
	case p.kind == returnFull:
		return "message/rfc822"
	case global:
		return "message/global-headers"
	}
	return "text/rfc822-headers"
}

// readReturned reads what the report returns of the original message. A
// failure report returns the whole message unless RET=HDRS was given or the
// message is larger than the cap; every other report returns the header
// only (RFC 3461 §4.3: "If a DSN contains no indications of delivery
// failure, only the headers of the message SHOULD be returned"). Content a
// 7-bit report cannot carry as it is (8-bit octets, NULs, bare CR or LF,
// lines over 998 octets) is converted to 7-bit MIME with the downgrade
// package; in an internationalised report 8-bit text stays.
func readReturned(r *Report, original io.Reader, global bool) (returnedPart, error) {
	if original == nil {
		return returnedPart{}, nil
	}
	limit := r.MaxReturnSize
	if limit == 0 {
		limit = DefaultMaxReturnSize
	}
	wantFull := r.Kind == Failed && r.Env.Ret != smtp.ReturnHeaders && limit > 0
	readLimit := max(limit, maxHeaderReturn)
	data, err := io.ReadAll(io.LimitReader(original, readLimit+1))
	if err != nil {
		return returnedPart{}, fmt.Errorf("dsn: read original message: %w", err)
	}
	if len(data) == 0 {
		return returnedPart{}, nil // an empty message: nothing to return
	}
	complete := int64(len(data)) <= readLimit
	hdr, bodyStart, blank := headerSection(data, complete)
	p := returnedPart{messageID: originalMessageID(hdr)}
	if wantFull {
		if complete && int64(len(data)) <= limit {
			whole := data
			if !blank && bodyStart < len(data) {
				// A line that is not a header field ends the
				// header: insert the blank line it lacks, as
				// the downgrade package repairs it, so that
				// the returned message parses.
				whole = append(append(append([]byte(nil), data[:bodyStart]...), '\r', '\n'), data[bodyStart:]...)
			}
			if full, ok := carriable(whole, global, false); ok {
				p.kind, p.data = returnFull, full
				p.eightBit = hasEightBit(full)
				return p, nil
			}
			p.note = "Your message could not be attached in a form this report can carry, so only its headers are attached."
		} else {
			p.note = fmt.Sprintf("Your message was larger than %s, so only its headers are attached.", sizeText(limit))
		}
	}
	if len(hdr) == 0 {
		p.note = "Your message had no header to attach."
		return p, nil
	}
	h, ok := carriable(hdr, global, true)
	if !ok {
		p.note = "The headers of your message could not be attached: they are not valid for this kind of report."
		return p, nil
	}
	p.kind, p.data = returnHeaders, h
	p.eightBit = hasEightBit(h)
	return p, nil
}

// headerSection finds the header section at the start of msg: the lines up
// to the blank line, or up to the first line that is neither a header field
// (RFC 5322 §2.2: field name of printable ASCII other than ":", then ":")
// nor a continuation of one. It returns the section, ending in its last line
// end, and the offset where the body begins; blank says a blank line ends
// the section. When msg is incomplete (cut at the read limit) a last line
// without its line end is left out; the section is also cut at a line end
// within maxHeaderReturn octets.
func headerSection(msg []byte, complete bool) (hdr []byte, body int, blank bool) {
	off := 0
	for off < len(msg) && off < maxHeaderReturn {
		nl := bytes.IndexByte(msg[off:], '\n')
		if nl < 0 {
			if !complete || !isHeaderLine(msg[off:], off == 0) {
				return msg[:off], off, false
			}
			return msg, len(msg), false
		}
		line := bytes.TrimSuffix(msg[off:off+nl], []byte("\r"))
		if len(line) == 0 {
			return msg[:off], off + nl + 1, true
		}
		if !isHeaderLine(line, off == 0) || off+nl+1 > maxHeaderReturn {
			return msg[:off], off, false
		}
		off += nl + 1
	}
	return msg[:off], off, false
}

// isHeaderLine reports whether line (without its line end) is a header
// field or, unless first, the continuation of one.
func isHeaderLine(line []byte, first bool) bool {
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return !first
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	for _, c := range line[:colon] {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// carriable returns data in a form the report can carry: as it is when it
// is already fit, otherwise converted to 7-bit MIME. headerOnly says data is
// a header section without a body. It reports false when data cannot be
// carried. The result always ends in CRLF.
func carriable(data []byte, global, headerOnly bool) ([]byte, bool) {
	if fits(data, global) {
		if !bytes.HasSuffix(data, []byte("\r\n")) {
			data = append(data[:len(data):len(data)], '\r', '\n')
		}
		return data, true
	}
	src := data
	if headerOnly {
		src = append(append([]byte(nil), data...), '\r', '\n')
	}
	var out bytes.Buffer
	if _, err := downgrade.Convert(&out, bytes.NewReader(src), downgrade.Options{}); err != nil {
		return nil, false
	}
	res := out.Bytes()
	if headerOnly {
		i := bytes.Index(res, []byte("\r\n\r\n"))
		if i < 0 {
			return nil, false
		}
		res = res[:i+2]
	}
	if !fits(res, global) {
		return nil, false
	}
	if !bytes.HasSuffix(res, []byte("\r\n")) {
		res = append(res, '\r', '\n')
	}
	return res, true
}

// fits reports whether data can go into the report as it is: CRLF line ends
// only, no NUL, lines of at most 998 octets, and no octet above 127 unless
// the report is internationalised (then the text must be valid UTF-8, RFC
// 6532 §3.2).
func fits(data []byte, global bool) bool {
	lineStart := 0
	for i, c := range data {
		switch {
		case c == 0:
			return false
		case c == '\r':
			if i+1 >= len(data) || data[i+1] != '\n' {
				return false
			}
		case c == '\n':
			if i == 0 || data[i-1] != '\r' {
				return false
			}
			if i-1-lineStart > 998 {
				return false
			}
			lineStart = i + 1
		case c >= 0x80 && !global:
			return false
		}
	}
	if len(data)-lineStart > 998 {
		return false
	}
	return !global || utf8.Valid(data)
}

// hasEightBit reports whether data holds an octet above 127.
func hasEightBit(data []byte) bool {
	for _, c := range data {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// originalMessageID returns the Message-ID of the header section hdr when it
// is a plain "<...>" msg-id, or "".
func originalMessageID(hdr []byte) string {
	if len(hdr) == 0 {
		return ""
	}
	m, err := mail.ReadMessage(io.MultiReader(bytes.NewReader(hdr), strings.NewReader("\r\n")))
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(m.Header.Get("Message-Id"))
	if len(id) < 5 || len(id) > 250 || id[0] != '<' || id[len(id)-1] != '>' || !strings.Contains(id, "@") {
		return ""
	}
	for i := 1; i < len(id)-1; i++ {
		if c := id[i]; c <= ' ' || c >= 127 || c == '<' || c == '>' || c == '"' || c == '\\' {
			return ""
		}
	}
	return id
}

// sizeText formats a size in octets for people: "100 KiB", "2 MiB".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d octets", n)
}
