package downgrade

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/downgrade/downgradetest"
)

// This file holds an independent reference reader built only on the
// standard library (net/textproto, mime, mime/multipart,
// mime/quotedprintable, encoding/base64): it walks a message's MIME tree
// and decodes every leaf, so that tests can compare input and output.

// refLeaf is one decoded leaf.
type refLeaf struct {
	path  string
	ctype string
	data  []byte
}

// refWalk decodes every leaf of msg. It fails where the standard library
// cannot read the message.
func refWalk(msg []byte) ([]refLeaf, error) {
	var leaves []refLeaf
	err := refMessage(msg, "", 0, &leaves)
	return leaves, err
}

func refMessage(msg []byte, path string, depth int, leaves *[]refLeaf) error {
	if bytes.HasPrefix(msg, []byte("From ")) {
		// An mbox From line, which mail readers skip.
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
	}
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg)))
	h, err := tr.ReadMIMEHeader()
	if err != nil && err != io.EOF {
		return fmt.Errorf("header at %q: %w", path, err)
	}
	body, err := io.ReadAll(tr.R)
	if err != nil {
		return err
	}
	return refEntity(h, body, path, true, "text/plain", depth, leaves)
}

func refChild(path string, i int) string {
	if path == "" {
		return fmt.Sprint(i)
	}
	return fmt.Sprintf("%s.%d", path, i)
}

func refEntity(h textproto.MIMEHeader, body []byte, path string, isMsg bool, defType string, depth int, leaves *[]refLeaf) error {
	if depth > 40 {
		return fmt.Errorf("too deep")
	}
	mt, params := defType, map[string]string{}
	if ct := h.Get("Content-Type"); ct != "" {
		var err error
		mt, params, err = mime.ParseMediaType(ct)
		if err != nil {
			return fmt.Errorf("content-type at %q: %w", path, err)
		}
	}
	cte, _, _ := strings.Cut(h.Get("Content-Transfer-Encoding"), "(") // a comment (RFC 2045 §6.1)
	cte = strings.ToLower(strings.TrimSpace(cte))
	// Any label but these two is the data as it is (RFC 2045 §6.4: an
	// unknown one leaves it opaque).
	identity := cte != "quoted-printable" && cte != "base64"
	if identity && strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		def := "text/plain"
		if mt == "multipart/digest" {
			def = "message/rfc822"
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for i := 1; ; i++ {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart at %q: %w", path, err)
			}
			pb, err := io.ReadAll(p)
			if err != nil {
				return fmt.Errorf("part %q: %w", refChild(path, i), err)
			}
			if err := refEntity(p.Header, pb, refChild(path, i), false, def, depth+1, leaves); err != nil {
				return err
			}
		}
	}
	if identity && (mt == "message/rfc822" || mt == "message/global") {
		return refMessage(body, path, depth+1, leaves)
	}
	leafPath := path
	if isMsg {
		leafPath = refChild(path, 1)
	}
	var data []byte
	var err error
	switch cte {
	case "quoted-printable":
		data, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	case "base64":
		data, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.TrimRight(body, "\r\n"))))
	default:
		if !identity {
			return fmt.Errorf("unknown encoding %q", cte)
		}
		data = body
	}
	if err != nil {
		return fmt.Errorf("leaf %q (%s): %w", leafPath, cte, err)
	}
	*leaves = append(*leaves, refLeaf{path: leafPath, ctype: mt, data: data})
	return nil
}

// check7bit fails t unless out is fit for a 7-bit transport: octets below
// 128, no NUL, CR only before LF, LF only after CR, lines ≤ 998 octets.
func check7bit(t testing.TB, out []byte) {
	t.Helper()
	if err := downgradetest.Check7Bit(out); err != nil {
		t.Fatal(err)
	}
}

// checkFit is check7bit, or for the 8BITMIME target (eightBit) the same
// less the rule on octets above 127.
func checkFit(t testing.TB, out []byte, eightBit bool) {
	t.Helper()
	if !eightBit {
		check7bit(t, out)
		return
	}
	if err := downgradetest.Check8BitMIME(out); err != nil {
		t.Fatal(err)
	}
}

// normalize gives a message that Convert reads as having bare-LF line
// ends (its first line ends in a bare LF) CRLF line ends, as the
// reference expects.
func normalize(msg []byte) []byte { return downgradetest.NormalizeLF(msg) }

// checkRoundTrip converts in and checks the output: 7-bit, a fixed point of
// Convert, and, when the reference can read the input, leaf for leaf the
// same decoded octets. It returns the output and report, or the error.
func checkRoundTrip(t testing.TB, in []byte) ([]byte, *Report, error) {
	out, rep, _, err := checkRoundTripCompared(t, in)
	return out, rep, err
}

// checkRoundTripCompared is checkRoundTrip that also tells whether the
// leaves were compared (the reference could read the input).
func checkRoundTripCompared(t testing.TB, in []byte) ([]byte, *Report, bool, error) {
	t.Helper()
	return checkRoundTripFor(t, in, Options{})
}

// checkRoundTripFor is checkRoundTripCompared for the target opts give
// (Options.EightBit, UTF8Headers): for 8BITMIME the output must be fit
// for 8BITMIME (checkFit); it must be a fixed point of the same target.
func checkRoundTripFor(t testing.TB, in []byte, target Options) ([]byte, *Report, bool, error) {
	t.Helper()
	var out bytes.Buffer
	eightBit := target.EightBit
	rep, err := Convert(&out, bytes.NewReader(in), Options{MemoryLimit: 1 << 12, EightBit: eightBit, UTF8Headers: target.UTF8Headers})
	if err != nil {
		var e *Error
		if !asError(err, &e) {
			t.Fatalf("Convert error is not a *downgrade.Error: %v", err)
		}
		return nil, rep, false, err
	}
	o := out.Bytes()
	checkFit(t, o, eightBit)
	if rep.Changed == bytes.Equal(in, o) {
		t.Fatalf("Report.Changed = %v, but output identical = %v", rep.Changed, bytes.Equal(in, o))
	}
	var again bytes.Buffer
	rep2, err := Convert(&again, bytes.NewReader(o), Options{EightBit: eightBit, UTF8Headers: target.UTF8Headers})
	if err != nil {
		t.Fatalf("converting the output again: %v", err)
	}
	if rep2.Changed || !bytes.Equal(again.Bytes(), o) {
		t.Fatalf("output is not a fixed point: report %+v\nfirst:\n%q\nsecond:\n%q", rep2, o, again.Bytes())
	}
	for _, r := range rep.Repairs {
		if r.What != "bare LF line ends made CRLF" && r.What != "MIME-Version: 1.0 added to a message with Content-Type" &&
			!strings.HasPrefix(r.What, "unknown Content-Transfer-Encoding") {
			// A repaired input is malformed, and the standard library may
			// read it another way: the checks above still hold.
			return o, rep, false, nil
		}
	}
	want, err := refWalk(normalize(in))
	if err != nil {
		return o, rep, false, nil // the reference cannot read the input
	}
	got, err := refWalk(o)
	if err != nil {
		t.Fatalf("reference cannot read the output (it could read the input): %v\n%q", err, o)
	}
	if len(got) != len(want) {
		t.Fatalf("output has %d leaves, input %d\nin:  %q\nout: %q", len(got), len(want), in, o)
	}
	for i := range want {
		if got[i].path != want[i].path || !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("leaf %d: got %s %q, want %s %q\nout: %q", i, got[i].path, got[i].data, want[i].path, want[i].data, o)
		}
	}
	return o, rep, true, nil
}
