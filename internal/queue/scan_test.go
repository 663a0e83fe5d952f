package queue

import (
	"bytes"
	"testing"

	"github.com/ferrymta/ferry/internal/downgrade"
)

// TestContentScanKeptWithMessage: Put scans the content once and keeps the
// result in the envelope (extension tag 3), in memory and across a restart.
func TestContentScanKeptWithMessage(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, nil, nil)
	q := mustOpen(t, cfg)
	bodies := map[string][]byte{
		"ascii": []byte("Subject: plain\r\n\r\nhello\r\n"),
		"8bit":  []byte("Subject: caf\xc3\xa9\r\nDKIM-Signature: v=1\r\n\r\nna\xc3\xafve\r\n" + string(bytes.Repeat([]byte("x"), 1200)) + "\r\n"),
		"bare":  []byte("Subject: b\r\n\r\nbare\nlf and a \x00\r\n"),
	}
	ids := map[string]string{}
	for name, b := range bodies {
		ids[name] = putBody(t, q, testEnv("s@example.org", "r@example.net"), b)
	}
	check := func(when string, q *Queue) {
		for name, id := range ids {
			want, err := downgrade.Scan(bytes.NewReader(readBodyOf(t, q, id)))
			if err != nil {
				t.Fatal(err)
			}
			q.mu.Lock()
			m := q.msgs[id]
			q.mu.Unlock()
			env, err := loadEnvelope(id, m.base, int(m.bodyOff))
			if err != nil {
				t.Fatal(err)
			}
			if env.ContentScan == nil {
				t.Fatalf("%s: %s: no content scan stored", when, name)
			}
			if *env.ContentScan != want {
				t.Errorf("%s: %s: stored scan %+v, scanning now gives %+v", when, name, *env.ContentScan, want)
			}
		}
	}
	check("after Put", q)
	q.Close()
	q = mustOpen(t, cfg)
	defer q.Close()
	check("after restart", q)
}

// TestScanFlagsRoundTrip checks every flag of the content scan survives
// its one-octet encoding.
func TestScanFlagsRoundTrip(t *testing.T) {
	for f := range 256 {
		if got := encodeScanFlags(decodeScanFlags(byte(f))); got != byte(f) {
			t.Fatalf("flags %08b came back as %08b", f, got)
		}
	}
}
