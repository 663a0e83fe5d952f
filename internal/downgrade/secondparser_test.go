package downgrade

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/downgrade/downgradetest"
)

// testMessages returns every test message in testdata: the golden inputs
// and the committed fuzz corpus.
func testMessages(t *testing.T) map[string][]byte {
	t.Helper()
	msgs := map[string][]byte{}
	golden, _ := filepath.Glob("testdata/golden/*.eml")
	golden8, _ := filepath.Glob("testdata/golden8bit/*.eml")
	golden = append(golden, golden8...)
	for _, name := range golden {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		msgs[name] = b
	}
	corpus, _ := filepath.Glob("testdata/fuzz/FuzzConvert/*")
	for _, name := range corpus {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		// "go test fuzz v1" then one []byte("...") line (Go syntax).
		_, lit, _ := strings.Cut(string(b), "\n")
		lit = strings.TrimSpace(lit)
		lit = strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")")
		v, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		msgs[name] = []byte(v)
	}
	if len(msgs) == 0 {
		t.Fatal("no test messages")
	}
	return msgs
}

// TestSecondParserRoundTrip converts every test message and decodes the
// output with a second, independent MIME parser (go-message, through
// downgradetest): the output must be 7-bit and show the input's leaves
// and decoded header text. Inputs that parser cannot read, and inputs
// Convert repairs (the repair changes what a reader sees), are counted,
// not compared.
func TestSecondParserRoundTrip(t *testing.T) { secondParserRoundTrip(t, false) }

// TestSecondParserRoundTrip8BitMIME is TestSecondParserRoundTrip for the
// 8BITMIME target, with the inputs of testdata/golden8bit too: the output
// must be fit for 8BITMIME and show the input's leaves.
func TestSecondParserRoundTrip8BitMIME(t *testing.T) { secondParserRoundTrip(t, true) }

func secondParserRoundTrip(t *testing.T, eightBit bool) {
	check, compare := downgradetest.Check7Bit, downgradetest.Compare
	if eightBit {
		check, compare = downgradetest.Check8BitMIME, downgradetest.Compare8BitMIME
	}
	compared, unreadable, refused := 0, 0, 0
	for name, in := range testMessages(t) {
		var out bytes.Buffer
		rep, err := Convert(&out, bytes.NewReader(in), Options{EightBit: eightBit})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("%s: error is not a *downgrade.Error: %v", name, err)
			}
			refused++
			continue
		}
		if err := check(out.Bytes()); err != nil {
			t.Errorf("%s: output unfit for the target: %v", name, err)
			continue
		}
		if repairedView(rep) {
			unreadable++
			continue
		}
		switch err := compare(in, out.Bytes()); {
		case errors.Is(err, downgradetest.ErrUnreadable):
			unreadable++
		case err != nil:
			t.Errorf("%s: %v", name, err)
		default:
			compared++
		}
	}
	t.Logf("compared %d, not readable by go-message or repaired %d, refused %d", compared, unreadable, refused)
	if compared < 30 {
		t.Errorf("only %d messages compared", compared)
	}
}

// repairedView reports a repair after which readers see the message
// differently from the input as go-message reads it (a body line taken
// out of the header, a close-delimiter added, octets replaced).
func repairedView(rep *Report) bool {
	for _, r := range rep.Repairs {
		switch {
		case r.What == "bare LF line ends made CRLF",
			r.What == "MIME-Version: 1.0 added to a message with Content-Type",
			strings.HasPrefix(r.What, "unknown Content-Transfer-Encoding"),
			strings.HasPrefix(r.What, "header field "):
		default:
			return true
		}
	}
	return false
}
