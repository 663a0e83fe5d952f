package downgrade

import (
	"bytes"
	"strings"
	"testing"
)

func TestScan(t *testing.T) {
	long := strings.Repeat("x", 999)
	tests := []struct {
		name string
		msg  string
		want Needs
	}{
		{"7-bit", "Subject: hi\r\n\r\nbody\r\n", Needs{}},
		{"8-bit body", "Subject: hi\r\n\r\nb\xc3\xa9\r\n", Needs{EightBit: true}},
		{"NUL", "Subject: hi\r\n\r\na\x00b\r\n", Needs{NUL: true}},
		{"bare CR", "Subject: hi\r\n\r\na\rb\r\n", Needs{BareCR: true}},
		{"bare LF", "Subject: hi\r\n\r\na\nb\r\n", Needs{BareLF: true}},
		{"LF message", "Subject: hi\n\nbody\n", Needs{BareLF: true}},
		{"998 is fine", "Subject: hi\r\n\r\n" + long[:998] + "\r\n", Needs{}},
		{"999 is long", "Subject: hi\r\n\r\n" + long + "\r\n", Needs{LongLines: true}},
		{"long last line", "Subject: hi\r\n\r\n" + long, Needs{LongLines: true}},
		{"8-bit subject", "Subject: h\xc3\xa9\r\n\r\nx\r\n", Needs{EightBit: true, HeaderEightBit: true}},
		{"8-bit display name", "From: J\xc3\xb6rg <j@example.org>\r\n\r\nx\r\n", Needs{EightBit: true, HeaderEightBit: true}},
		{"8-bit address", "From: j\xc3\xb6rg@example.org\r\n\r\nx\r\n", Needs{EightBit: true, HeaderEightBit: true, NeedsSMTPUTF8: true}},
		{"DKIM", "DKIM-Signature: v=1\r\nSubject: x\r\n\r\nx\r\n", Needs{DKIMSigned: true}},
		{"trailing CR", "Subject: hi\r\n\r\nx\r", Needs{BareCR: true}},
	}
	var sc Scanner // shared by the cases: its buffers pass from one to the next
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Scan(strings.NewReader(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Scan = %+v, want %+v", got, tt.want)
			}
			if got, err := ScanBytes([]byte(tt.msg)); err != nil || got != tt.want {
				t.Errorf("ScanBytes = %+v, %v, want %+v", got, err, tt.want)
			}
			for range 2 { // a fresh buffer, then one kept from the call before
				if got, err := sc.ScanBytes([]byte(tt.msg)); err != nil || got != tt.want {
					t.Errorf("Scanner.ScanBytes = %+v, %v, want %+v", got, err, tt.want)
				}
			}
			if got.SevenBit() != (tt.want == Needs{} || tt.want == Needs{DKIMSigned: true}) {
				t.Errorf("SevenBit = %v", got.SevenBit())
			}
		})
	}
}

// FuzzScanBytes checks that ScanBytes, with its buffer no larger than the
// message, finds what Scan with its 64 KiB buffer finds.
func FuzzScanBytes(f *testing.F) {
	f.Add([]byte("Subject: h\xc3\xa9\r\n\r\nx\r\n"))
	f.Add([]byte("From: j\xc3\xb6rg@example.org\r\n folded\r\n\r\n" + strings.Repeat("y", 1200) + "\n"))
	f.Add([]byte("no header at all"))
	var sc Scanner
	f.Fuzz(func(t *testing.T, msg []byte) {
		want, err1 := Scan(bytes.NewReader(msg))
		got, err2 := ScanBytes(msg)
		if (err1 == nil) != (err2 == nil) || got != want {
			t.Fatalf("ScanBytes = %+v, %v; Scan = %+v, %v", got, err2, want, err1)
		}
		if got, err3 := sc.ScanBytes(msg); (err1 == nil) != (err3 == nil) || got != want {
			t.Fatalf("Scanner.ScanBytes = %+v, %v; Scan = %+v, %v", got, err3, want, err1)
		}
	})
}
