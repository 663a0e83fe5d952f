// Package downgradetest judges a conversion with a second, independent MIME
// parser, github.com/emersion/go-message: the output must be 7-bit, every
// leaf must decode to the octets it held in the input, and every header
// field must decode to the same text. Only tests import it; the relay never
// links go-message.
package downgradetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"sync"

	message "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// rawCharsetOnce makes go-message hand text through in its own octets, so
// that leaves and header text compare octet for octet whatever the label.
var rawCharsetOnce sync.Once

func rawCharset(_ string, r io.Reader) (io.Reader, error) { return r, nil }

// Leaf is one decoded leaf of a message.
type Leaf struct {
	Path string
	Data []byte
}

// Field is one decoded header field of a message or part. Raw is its
// decoded text with white space collapsed and quoting removed, whatever
// the field; Text is the same or, for a field parsed by its syntax
// (addresses, MIME parameters), what that parse gives.
type Field struct {
	Path, Name, Text, Raw string
	// Unparsed is set for an address field net/mail cannot parse.
	Unparsed bool
}

// Tree is what a reader sees of a message: its leaves and header text.
type Tree struct {
	Leaves []Leaf
	Fields []Field
	// Messages lists the paths of the message headers: "" for the top,
	// PATH/ for a message/rfc822 part's.
	Messages []string
}

// Walk reads msg with go-message and decodes every leaf and header field.
// A leading mbox "From " line of a message is skipped, as mail readers do.
func Walk(msg []byte) (*Tree, error) {
	rawCharsetOnce.Do(func() { message.CharsetReader = rawCharset })
	t := &Tree{}
	return t, t.message(NormalizeLF(msg), "", 0)
}

func (t *Tree) message(msg []byte, path string, depth int) error {
	if bytes.HasPrefix(msg, []byte("From ")) {
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
	}
	t.Messages = append(t.Messages, path)
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownEncoding(err) && !message.IsUnknownCharset(err) {
		return fmt.Errorf("message at %q: %w", path, err)
	}
	return t.entity(e, path, true, "text/plain", depth)
}

func child(path string, i int) string {
	if path == "" {
		return fmt.Sprint(i)
	}
	return fmt.Sprintf("%s.%d", path, i)
}

func (t *Tree) entity(e *message.Entity, path string, isMsg bool, defType string, depth int) error {
	if depth > 40 {
		return errors.New("nested too deep")
	}
	if err := t.header(e.Header.Header, path); err != nil {
		return err
	}
	mt, _, _ := e.Header.ContentType()
	if !e.Header.Has("Content-Type") {
		mt = defType
	}
	if mr := e.MultipartReader(); mr != nil {
		def := "text/plain"
		if mt == "multipart/digest" {
			def = "message/rfc822" // RFC 2046 §5.1.5
		}
		for i := 1; ; i++ {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil && !message.IsUnknownEncoding(err) && !message.IsUnknownCharset(err) {
				return fmt.Errorf("multipart at %q: %w", path, err)
			}
			if err := t.entity(p, child(path, i), false, def, depth+1); err != nil {
				return err
			}
		}
	}
	body, err := io.ReadAll(e.Body)
	if err != nil {
		return fmt.Errorf("body at %q: %w", path, err)
	}
	if mt == "message/rfc822" || mt == "message/global" {
		return t.message(body, path+"/", depth+1) // "/": the message inside
	}
	if isMsg {
		path = child(path, 1)
	}
	t.Leaves = append(t.Leaves, Leaf{Path: path, Data: body})
	return nil
}

// header decodes every field: addresses as name and address pairs, MIME
// parameters as a sorted list, everything else as decoded text with white
// space runs collapsed and quoting removed.
func (t *Tree) header(h textproto.Header, path string) error {
	dec := mime.WordDecoder{CharsetReader: rawCharset}
	for f := h.Fields(); f.Next(); {
		name := strings.ToLower(f.Key())
		raw, _ := f.Raw()
		v := relabel(string(unfold(raw[bytes.IndexByte(raw, ':')+1:])))
		var text string
		unparsed := false
		switch name {
		case "from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc":
			p := mail.AddressParser{WordDecoder: &dec}
			list, err := p.ParseList(v)
			if err != nil {
				// Encoded-words inside quoted strings are text (RFC 2047
				// §5 rule 3): hide them from the decoder.
				hidden := strings.ReplaceAll(decodeText(&dec, hideQuoted(v)), "=\x00?", "=?")
				// White space between words and specials carries nothing
				// in an address list: compare without it.
				text, unparsed = strings.Join(strings.Fields(collapse(hidden)), ""), true
				break
			}
			var b strings.Builder
			for _, a := range list {
				fmt.Fprintf(&b, "%q <%s>;", a.Name, a.Address)
			}
			text = b.String()
		case "content-type", "content-disposition":
			text = params(&dec, v)
		default:
			text = collapse(decodeText(&dec, v))
		}
		t.Fields = append(t.Fields, Field{Path: path, Name: name, Text: text, Raw: collapse(decodeText(&dec, v)), Unparsed: unparsed})
	}
	return nil
}

// NormalizeLF gives a message whose first line ends in a bare LF CRLF line
// ends, as Convert reads such input.
func NormalizeLF(msg []byte) []byte {
	i := bytes.IndexByte(msg, '\n')
	if i < 0 || (i > 0 && msg[i-1] == '\r') {
		return msg
	}
	var b bytes.Buffer
	for j, c := range msg {
		if c == '\n' && (j == 0 || msg[j-1] != '\r') {
			b.WriteByte('\r')
		}
		b.WriteByte(c)
	}
	return b.Bytes()
}

// Check7Bit reports the first reason out is unfit for a 7-bit transport:
// an octet above 127, a NUL, a bare CR or LF, or a line over 998 octets.
func Check7Bit(out []byte) error { return checkOctets(out, false) }

// Check8BitMIME reports the first reason out is unfit for an 8BITMIME
// transport (RFC 6152 §2): a NUL, a bare CR or LF, or a line over 998
// octets. Octets above 127 are fine.
func Check8BitMIME(out []byte) error { return checkOctets(out, true) }

func checkOctets(out []byte, allow8 bool) error {
	line := 0
	for i, c := range out {
		switch {
		case c >= 0x80 && !allow8:
			return fmt.Errorf("8-bit octet %#x at %d", c, i)
		case c == 0:
			return fmt.Errorf("NUL at %d", i)
		case c == '\r' && (i+1 == len(out) || out[i+1] != '\n'):
			return fmt.Errorf("bare CR at %d", i)
		case c == '\n' && (i == 0 || out[i-1] != '\r'):
			return fmt.Errorf("bare LF at %d", i)
		case c == '\n':
			if line-1 > 998 {
				return fmt.Errorf("line of %d octets ending at %d", line-1, i)
			}
			line = 0
			continue
		}
		line++
	}
	if line > 998 {
		return fmt.Errorf("last line of %d octets", line)
	}
	return nil
}

// ErrUnreadable reports that go-message cannot read the input, so that
// there is nothing to compare the output with.
var ErrUnreadable = errors.New("the second parser cannot read the input")

// Compare judges out as a conversion of in: out must be 7-bit, readable by
// go-message, and show the same leaves (path and decoded octets) and the
// same decoded header text as in. It returns ErrUnreadable (wrapped) when
// go-message cannot read in, and a description of the first difference
// otherwise.
func Compare(in, out []byte) error { return compare(in, out, Check7Bit) }

// Compare8BitMIME is Compare for a conversion to 8BITMIME: out must pass
// Check8BitMIME instead of Check7Bit.
func Compare8BitMIME(in, out []byte) error { return compare(in, out, Check8BitMIME) }

func compare(in, out []byte, check func([]byte) error) error {
	if err := check(out); err != nil {
		return err
	}
	want, err := Walk(in)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	got, err := Walk(out)
	if err != nil {
		return fmt.Errorf("output unreadable: %w", err)
	}
	if encodings(got) > encodings(want) {
		for _, m := range got.Messages {
			if hasField(got.Fields, m, "content-type") && !hasField(got.Fields, m, "mime-version") {
				return fmt.Errorf("transfer encoding added, and the message at %q has Content-Type but no MIME-Version: strict readers take it as plain text", m)
			}
		}
	}
	if len(got.Leaves) != len(want.Leaves) {
		return fmt.Errorf("output has %d leaves, input %d", len(got.Leaves), len(want.Leaves))
	}
	for i, w := range want.Leaves {
		if g := got.Leaves[i]; g.Path != w.Path || !bytes.Equal(g.Data, w.Data) {
			return fmt.Errorf("leaf %s: got %q, want %q", w.Path, g.Data, w.Data)
		}
	}
	// The converter may add MIME-Version and Content-Type, and may change
	// Content-Transfer-Encoding: compare every other field.
	skip := func(f Field) bool {
		return f.Name == "content-transfer-encoding" || f.Name == "mime-version"
	}
	var wf, gf []Field
	for _, f := range want.Fields {
		if !skip(f) {
			wf = append(wf, f)
		}
	}
	for _, f := range got.Fields {
		if !skip(f) && !(f.Name == "content-type" && !hasField(want.Fields, f.Path, "content-type")) {
			gf = append(gf, f)
		}
	}
	if len(gf) != len(wf) {
		return fmt.Errorf("output has %d header fields, input %d", len(gf), len(wf))
	}
	for i, w := range wf {
		if w.Unparsed {
			// net/mail cannot read the input's addresses: compare the
			// decoded text of the whole field instead.
			g := strings.Join(strings.Fields(gf[i].Raw), "")
			if gf[i].Unparsed {
				g = gf[i].Text
			}
			w.Unparsed, w.Raw, gf[i].Text = gf[i].Unparsed, gf[i].Raw, g
		}
		if gf[i].Path != w.Path || gf[i].Name != w.Name || gf[i].Text != w.Text {
			return fmt.Errorf("header field %s %q: got %q, want %q", w.Path, w.Name, gf[i].Text, w.Text)
		}
	}
	return nil
}

func hasField(fs []Field, path, name string) bool {
	for _, f := range fs {
		if f.Path == path && f.Name == name {
			return true
		}
	}
	return false
}

// encodings counts the quoted-printable and base64 labels in t.
func encodings(t *Tree) int {
	n := 0
	for _, f := range t.Fields {
		if v := strings.ToLower(f.Text); f.Name == "content-transfer-encoding" && (v == "quoted-printable" || v == "base64") {
			n++
		}
	}
	return n
}
