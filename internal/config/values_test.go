package config

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1000", 1000, true},
		{"50MB", 50_000_000, true},
		{"50 MB", 50_000_000, true},
		{"50mb", 50_000_000, true},
		{"64MiB", 64 << 20, true},
		{"1KB", 1000, true},
		{"1KiB", 1024, true},
		{"2GB", 2_000_000_000, true},
		{"2GiB", 2 << 30, true},
		{"10B", 10, true},
		{"", 0, false},
		{"MB", 0, false},
		{"1.5MB", 0, false},
		{"-1", 0, false},
		{"5TB", 0, false},
		{"fifty", 0, false},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"9999999999GiB", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFormatSize(t *testing.T) {
	cases := map[int64]string{0: "0", 50_000_000: "50MB", 64 << 20: "64MiB", 1 << 30: "1GiB", 1000: "1KB", 1024: "1KiB", 1234567: "1234567", 3e9: "3GB"}
	for in, want := range cases {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
		if back, err := ParseSize(want); err != nil || back != in {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", in, back, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5m", 5 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"5d", 120 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"0s", 0, true},
		{"250ms", 250 * time.Millisecond, true},
		{"0d", 0, true},
		{"", 0, false},
		{"5", 0, false},
		{"-5m", 0, false},
		{"d", 0, false},
		{"xd", 0, false},
		{"1d-1h", 0, false},
		{"99999d", 0, false},
		{"5 minutes", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	cases := map[time.Duration]string{
		0: "0s", 5 * time.Minute: "5m", 90 * time.Minute: "1h30m", 120 * time.Hour: "120h",
		1500 * time.Millisecond: "1s500ms", time.Hour + time.Second: "1h1s", 3*time.Microsecond + 2: "3us2ns",
	}
	for in, want := range cases {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", in, got, want)
		}
		if back, err := ParseDuration(want); err != nil || back != in {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", in, back, err)
		}
	}
}

func TestScanLines(t *testing.T) {
	doc := `# comment
hostname = "x" # trailing [comment]
[[listener]]
keywords = [
  "A", # ]
  "B",
]
address = "a"
[[listener]]
'quoted key' = """
not = "a key"
"""
address = "b"
[delivery]
timeouts.connect = "1s"
[delivery.timeouts]
mail = "1m"
`
	got := scanLines(doc)
	want := lineIndex{
		"hostname": 2, "listener[0]": 3, "listener[0].keywords": 4, "listener[0].address": 8,
		"listener[1]": 9, "listener[1].quoted key": 10, "listener[1].address": 13,
		"delivery": 14, "delivery.timeouts.connect": 15, "delivery.timeouts": 16, "delivery.timeouts.mail": 17,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scanLines =\n%v\nwant\n%v", got, want)
	}
	if n := want.lineOf("listener[1].address.x"); n != 13 {
		t.Errorf("lineOf(child) = %d, want 13", n)
	}
	if n := want.lineOf("route[0].domain"); n != 0 {
		t.Errorf("lineOf(missing) = %d, want 0", n)
	}
}

func TestWriteTOMLDefault(t *testing.T) {
	c := Default()
	c.Hostname = "relay.example"
	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"hostname = \"relay.example\"\n",
		"\n[[listener]]\naddress = \"127.0.0.1:2525\"\n",
		"max_message_size = \"50MB\"\n",
		"lifetime = \"120h\"\n",
		"segment_size = \"64MiB\"\n",
		"\n[delivery.timeouts]\nconnect = \"30s\"\n",
		"\n[admin]\ntoken_file = \"\"\n",
	} {
		if !bytes.Contains(buf.Bytes(), []byte(line)) {
			t.Errorf("WriteTOML output lacks %q:\n%s", line, buf.String())
		}
	}
}
