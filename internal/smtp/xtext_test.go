package smtp

import (
	"errors"
	"testing"
)

func TestXtext(t *testing.T) {
	tests := []struct{ plain, encoded string }{
		{"", ""},
		{"abc", "abc"},
		{"a+b", "a+2Bb"},
		{"a=b", "a+3Db"},
		{"rfc822;user@example.com", "rfc822;user@example.com"},
		{"with space", "with+20space"},
		{"\x00\x7f\xff\r\n", "+00+7F+FF+0D+0A"},
		{"caf\xc3\xa9", "caf+C3+A9"},
		{"~!", "~!"},
	}
	for _, tc := range tests {
		if got := EncodeXtext(tc.plain); got != tc.encoded {
			t.Errorf("EncodeXtext(%q) = %q, want %q", tc.plain, got, tc.encoded)
		}
		got, err := DecodeXtext(tc.encoded)
		if err != nil || got != tc.plain {
			t.Errorf("DecodeXtext(%q) = %q, %v, want %q", tc.encoded, got, err, tc.plain)
		}
	}
	for _, bad := range []string{"+", "+2", "+2b", "+G0", "a=b", "a b", "\x7f", "\xc3\xa9", "ab+", "+ 2"} {
		if got, err := DecodeXtext(bad); err == nil {
			t.Errorf("DecodeXtext(%q) = %q, want an error", bad, got)
		} else {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("DecodeXtext(%q) error %v is not a *SyntaxError", bad, err)
			}
		}
	}
}
