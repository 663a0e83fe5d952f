package downgrade

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/downgrade/downgradetest"
)

// part returns the octets of the MIME part whose header begins with
// header in msg: from that line to the next delimiter line of boundary.
func part(t *testing.T, msg []byte, boundary, header string) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte("--"+boundary+"\r\n"+header))
	if i < 0 {
		t.Fatalf("no part starting %q in %q", header, msg)
	}
	rest := msg[i+len(boundary)+4:]
	j := bytes.Index(rest, []byte("\r\n--"+boundary))
	if j < 0 {
		t.Fatalf("part %q not ended", header)
	}
	return rest[:j]
}

// TestEightBitMIMEKeepsParts converts a message with one 8-bit part and
// one part with a line over 998 octets for an 8BITMIME hop: the 8-bit part
// comes out byte for byte, only the other becomes quoted-printable, and
// the report says why. The 7-bit target encodes both.
func TestEightBitMIMEKeepsParts(t *testing.T) {
	in, err := os.ReadFile("testdata/golden8bit/long-line-and-8bit.eml")
	if err != nil {
		t.Fatal(err)
	}
	const textPart = "Content-Type: text/plain"
	const csvPart = "Content-Type: text/csv"
	var out bytes.Buffer
	rep, err := Convert(&out, bytes.NewReader(in), Options{EightBit: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := part(t, out.Bytes(), "xyz", textPart), part(t, in, "xyz", textPart); !bytes.Equal(got, want) {
		t.Errorf("8-bit part changed:\n got %q\nwant %q", got, want)
	}
	if !bytes.Contains(part(t, out.Bytes(), "xyz", csvPart), []byte("Content-Transfer-Encoding: quoted-printable\r\n")) {
		t.Errorf("long-line part not quoted-printable:\n%s", out.Bytes())
	}
	if len(rep.Parts) != 1 || rep.Parts[0].Path != "2" || rep.Parts[0].Reason != "long lines" || rep.Kept8Bit != 1 || !rep.EightBit {
		t.Errorf("report %+v", rep)
	}
	if s := rep.Summary(); s != "converted 1 part (8bit→quoted-printable), 1 8-bit part kept" {
		t.Errorf("Summary = %q", s)
	}

	out.Reset()
	rep, err = Convert(&out, bytes.NewReader(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Parts) != 2 || rep.Kept8Bit != 0 || rep.Parts[0].Reason != "8-bit" || rep.Parts[1].Reason != "8-bit and long lines" {
		t.Errorf("7-bit target: report %+v", rep)
	}
	check7bit(t, out.Bytes())
}

// TestEightBitMIMEBinary: for an 8BITMIME hop a part labelled binary that
// is valid 8-bit text is relabelled 8bit and kept; one with NUL and a bare
// CR becomes base64; the multipart labelled binary becomes 8bit.
func TestEightBitMIMEBinary(t *testing.T) {
	in, err := os.ReadFile("testdata/golden8bit/binary-parts.eml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := Convert(&out, bytes.NewReader(in), Options{EightBit: true})
	if err != nil {
		t.Fatal(err)
	}
	o := out.Bytes()
	text := part(t, o, "b1", "Content-Type: text/plain; charset=utf-8")
	want := bytes.Replace(part(t, in, "b1", "Content-Type: text/plain; charset=utf-8"), []byte("Encoding: binary"), []byte("Encoding: 8bit"), 1)
	if !bytes.Equal(text, want) {
		t.Errorf("binary text part: got %q, want %q", text, want)
	}
	if !bytes.Contains(part(t, o, "b1", "Content-Type: application/octet-stream"), []byte("Content-Transfer-Encoding: base64\r\n")) {
		t.Errorf("binary data not base64:\n%q", o)
	}
	head, _, _ := strings.Cut(string(o), "\r\n\r\n")
	if !strings.HasSuffix(head, "\r\nContent-Transfer-Encoding: 8bit") || strings.Contains(string(o), "Encoding: binary") {
		t.Errorf("a binary label is left:\n%q", o)
	}
	if s := rep.Summary(); s != "converted 2 parts (binary→8bit, binary→base64), 1 composite part relabelled 8bit" {
		t.Errorf("Summary = %q", s)
	}
}

// TestEightBitMIMEConvertIfNeeded: for the 8BITMIME target a message that
// is 8-bit but within the line limits is copied as it is; one with a long
// line is converted.
func TestEightBitMIMEConvertIfNeeded(t *testing.T) {
	cv := Converter{Options: Options{EightBit: true}}
	for name, want := range map[string]bool{"bare-lf-part.eml": true, "long-line-and-8bit.eml": true} {
		in, err := os.ReadFile("testdata/golden8bit/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		rep, _, err := cv.ConvertIfNeeded(&out, bytes.NewReader(in))
		if err != nil || rep.Changed != want {
			t.Errorf("%s: changed %v, %v", name, rep.Changed, err)
		}
	}
	in := []byte("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n")
	var out bytes.Buffer
	rep, _, err := cv.ConvertIfNeeded(&out, bytes.NewReader(in))
	if err != nil || rep.Changed || !bytes.Equal(out.Bytes(), in) {
		t.Errorf("8-bit message within limits: changed %v, %v, %q", rep.Changed, err, out.Bytes())
	}
}

// TestEightBitMIMEUTF8Headers: a message with UTF-8 in a header address
// and a line over 998 octets converts for 8BITMIME only when it goes with
// SMTPUTF8 (Options.UTF8Headers), and then its header stays byte for byte;
// without SMTPUTF8 it needs SMTPUTF8 (5.6.9), as for the 7-bit target.
func TestEightBitMIMEUTF8Headers(t *testing.T) {
	head := "From: J\xc3\xb6rg <j\xc3\xb6rg@example.de>\r\nSubject: gr\xc3\xbc\xc3\x9fe\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n"
	in := []byte(head + "Content-Transfer-Encoding: 8bit\r\n\r\n" + strings.Repeat("K\xc3\xb6ln am Rhein ", 80) + "\r\n")
	var out bytes.Buffer
	rep, err := Convert(&out, bytes.NewReader(in), Options{EightBit: true, UTF8Headers: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out.Bytes(), []byte(head+"Content-Transfer-Encoding: quoted-printable\r\n\r\n")) || len(rep.Headers) != 0 {
		t.Errorf("header changed (%d fields encoded):\n%q", len(rep.Headers), out.Bytes())
	}
	if err := downgradetest.Compare8BitMIME(in, out.Bytes()); err != nil {
		t.Error(err)
	}
	for _, opts := range []Options{{EightBit: true}, {UTF8Headers: true}} {
		_, err := Convert(&out, bytes.NewReader(in), opts)
		var e *Error
		if !asError(err, &e) || e.Enhanced() != "5.6.9" {
			t.Errorf("%+v: err %v, want one needing SMTPUTF8", opts, err)
		}
	}
}
