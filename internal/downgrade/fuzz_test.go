package downgrade

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzConvert checks, for any input, that Convert neither panics nor
// hangs, that it fails only with a *Error, and that its output is 7-bit
// (no octet above 127, no NUL, CRLF only, lines ≤ 998), a fixed point of
// Convert, and leaf for leaf the input's decoded octets wherever the
// standard library's decoders can read the input; and the same for the
// 8BITMIME target (with and without SMTPUTF8 headers), less the rule on
// octets above 127.
func FuzzConvert(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Subject: x\n\nbody\rwith\x00junk\xff"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n\xe9\r\n--a--"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		tm := time.AfterFunc(30*time.Second, func() { panic(fmt.Sprintf("HANG %q", in)) })
		defer tm.Stop()
		for _, target := range []Options{{}, {EightBit: true}, {EightBit: true, UTF8Headers: true}} {
			out, _, _, err := checkRoundTripFor(t, in, target)
			if err == nil && len(in) > 0 && len(out) == 0 {
				t.Fatalf("empty output for non-empty input (target %+v)", target)
			}
			if err == nil && bytes.Count(out, []byte("\r\n--")) > 4*bytes.Count(in, []byte("--"))+8 {
				t.Fatalf("delimiter lines multiplied (target %+v)", target)
			}
		}
	})
}
