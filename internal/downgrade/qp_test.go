package downgrade

import (
	"bytes"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
)

func qpEncode(t testing.TB, in []byte, final bool) []byte {
	t.Helper()
	var e qpEncoder
	var out bytes.Buffer
	nIn, nOut, err := e.encode(&out, bytes.NewReader(in), nil, final)
	if err != nil {
		t.Fatal(err)
	}
	if nIn != int64(len(in)) || nOut != int64(out.Len()) {
		t.Fatalf("counts %d/%d, want %d/%d", nIn, nOut, len(in), out.Len())
	}
	return out.Bytes()
}

// checkQP checks the RFC 2045 §6.7 form of enc and that the standard
// library's reader gives in back.
func checkQP(t *testing.T, in, enc []byte) {
	t.Helper()
	check7bit(t, enc)
	for _, line := range bytes.Split(enc, []byte("\r\n")) {
		if len(line) > qpLineMax {
			t.Fatalf("line of %d characters: %q", len(line), line)
		}
		if n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t') {
			t.Fatalf("trailing white space: %q", line)
		}
		if bytes.HasPrefix(line, []byte(".")) || bytes.HasPrefix(line, []byte("From ")) {
			t.Fatalf("unsafe line start: %q", line)
		}
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(enc)))
	if err != nil {
		t.Fatalf("decoding %q: %v", enc, err)
	}
	if !bytes.Equal(dec, in) {
		t.Fatalf("round trip:\n in  %q\n enc %q\n dec %q", in, enc, dec)
	}
}

func TestQPEncoder(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means: check the round trip only
	}{
		{"plain", "hello\r\n", "hello\r\n"},
		{"equals", "a=b\r\n", "a=3Db\r\n"},
		{"trailing space", "a \r\nb\t\r\n", "a=20\r\nb=09\r\n"},
		{"space at end of input", "a ", "a=20"},
		{"inner space", "a b\r\n", "a b\r\n"},
		{"bare CR and LF", "a\rb\nc\r\n", "a=0Db=0Ac\r\n"},
		{"CR at end", "a\r", "a=0D"},
		{"dot line", ".\r\n..x\r\n", "=2E\r\n=2E.x\r\n"},
		{"From line", "From me\r\nFrom\r\nFromage\r\n", "=46rom me\r\nFrom\r\nFromage\r\n"},
		{"8-bit", "\xc3\xa9\xff\x00\r\n", "=C3=A9=FF=00\r\n"},
		{"76 exactly before CRLF", strings.Repeat("a", 76) + "\r\n", strings.Repeat("a", 76) + "\r\n"},
		{"77 gets a soft break", strings.Repeat("a", 77) + "\r\n", strings.Repeat("a", 75) + "=\r\naa\r\n"},
		{"76 at end of input", strings.Repeat("a", 76), strings.Repeat("a", 75) + "=\r\na"},
		{"escape does not straddle", strings.Repeat("a", 74) + "\xe9b\r\n", strings.Repeat("a", 74) + "=\r\n=E9b\r\n"},
		{"dot after soft break", strings.Repeat("a", 75) + ".x\r\n", strings.Repeat("a", 75) + "=\r\n=2Ex\r\n"},
		{"From after soft break", strings.Repeat("a", 75) + "From x\r\n", strings.Repeat("a", 75) + "=\r\n=46rom x\r\n"},
		{"space before soft break", strings.Repeat("a", 74) + " bc\r\n", strings.Repeat("a", 74) + " =\r\nbc\r\n"},
		{"long line", strings.Repeat("0123456789", 200), ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := qpEncode(t, []byte(tt.in), false)
			if tt.want != "" && string(enc) != tt.want {
				t.Errorf("encode(%q) =\n %q\nwant\n %q", tt.in, enc, tt.want)
			}
			checkQP(t, []byte(tt.in), enc)
		})
	}
}

func TestQPEncoderFinal(t *testing.T) {
	if got := string(qpEncode(t, []byte("abc"), true)); got != "abc=\r\n" {
		t.Errorf("final without CRLF = %q", got)
	}
	if got := string(qpEncode(t, []byte("abc\r\n"), true)); got != "abc\r\n" {
		t.Errorf("final with CRLF = %q", got)
	}
}

// TestQPEncoderRandom encodes random octet strings, including ones far
// longer than the encoder's buffer, so that look-ahead across reads is
// exercised.
func TestQPEncoderRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab .F=\r\n\t\xc3\xa9\x00From ")
	for i := 0; i < 300; i++ {
		n := rng.IntN(300)
		if i%50 == 0 {
			n = bufSize*2 + rng.IntN(100)
		}
		in := make([]byte, n)
		for j := range in {
			if rng.IntN(4) == 0 {
				in[j] = byte(rng.IntN(256))
			} else {
				in[j] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		enc := qpEncode(t, in, false)
		checkQP(t, in, enc)
		var e qpEncoder
		var whole bytes.Buffer
		if _, _, err := e.encode(&whole, nil, in, false); err != nil || !bytes.Equal(whole.Bytes(), enc) {
			t.Fatalf("encoding from memory differs from encoding from a reader (%v)", err)
		}
	}
}

func TestBase64Encoder(t *testing.T) {
	for _, n := range []int{0, 1, 56, 57, 58, 114, 1000, b64Group*1149 + 5} {
		in := make([]byte, n)
		for i := range in {
			in[i] = byte(i * 7)
		}
		var e b64Encoder
		var out bytes.Buffer
		if _, _, err := e.encode(&out, bytes.NewReader(in), nil, false); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(out.String(), "\r\n")
		for i, l := range lines {
			if len(l) > 76 || (i < len(lines)-1 && len(l) != 76) {
				t.Fatalf("n=%d: line %d has %d characters", n, i, len(l))
			}
		}
		var dec bytes.Buffer
		if _, err := decodeB64Lenient(&dec, &out); err != nil || !bytes.Equal(dec.Bytes(), in) {
			t.Fatalf("n=%d: round trip failed: %v", n, err)
		}
	}
}

func TestDecodeB64Lenient(t *testing.T) {
	tests := []struct{ in, want string }{
		{"aGVsbG8=", "hello"},
		{"aGVs\r\nbG8=\r\n", "hello"},
		{"aGVs\xe9bG8", "hello"}, // junk ignored, padding missing
		{"aGk=aGk=", "hihi"},     // padding ends a group, decoding goes on
		{"aGVsbG8=X", "hello"},   // dangling character dropped
		{"a", ""},                // nothing but a dangling character
		{"!!aGk=!!", "hi"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if _, err := decodeB64Lenient(&out, strings.NewReader(tt.in)); err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if out.String() != tt.want {
			t.Errorf("decode(%q) = %q, want %q", tt.in, out.String(), tt.want)
		}
	}
}

func TestDecodeQPLenient(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=3Db\r\n", "a=b\r\n"},
		{"caf\xe9 =c3=a9\r\n", "caf\xe9 \xc3\xa9\r\n"},
		{"soft=\r\nbreak\r\n", "softbreak\r\n"},
		{"soft= \t\r\nbreak", "softbreak"},
		{"trail  \r\nx", "trail\r\nx"},
		{"stray = sign\r\n", "stray = sign\r\n"},
		{"end=", "end"},
		{"lf\nonly\n", "lf\nonly\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		src := &lineSrc{br: bufioReader(tt.in)}
		if err := decodeQPLenient(&out, src, 1<<20); err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if out.String() != tt.want {
			t.Errorf("decode(%q) = %q, want %q", tt.in, out.String(), tt.want)
		}
	}
}

// TestQPEncoderWhiteSpaceEverywhere puts a space or tab before a line end,
// a bare CR and the end of input at every column, so that every fast path
// boundary meets one.
func TestQPEncoderWhiteSpaceEverywhere(t *testing.T) {
	for k := 0; k < 200; k++ {
		for _, ws := range []string{" ", "\t", "  "} {
			for _, end := range []string{"\r\n", "\r", "", "\r\nnext\r\n"} {
				in := []byte(strings.Repeat("abcdefg h", k/9+1)[:k] + ws + end)
				checkQP(t, in, qpEncode(t, in, false))
				var e qpEncoder
				var whole bytes.Buffer
				if _, _, err := e.encode(&whole, nil, in, false); err != nil {
					t.Fatal(err)
				}
				checkQP(t, in, whole.Bytes())
			}
		}
	}
}
