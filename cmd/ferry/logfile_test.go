package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/config"
)

// TestJSONLogDurationsInSeconds: a duration in the JSON log is a number of
// seconds, not Go's nanoseconds; the text log keeps Go's form ("1.5s").
func TestJSONLogDurationsInSeconds(t *testing.T) {
	var buf bytes.Buffer
	logger, _, out, err := newLogger(config.Log{Format: "json", Level: "info"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	logger.Info("sent", "delay", 1500*time.Millisecond, slog.Group("g", slog.Duration("wait", 2*time.Minute)))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if rec["delay"] != 1.5 {
		t.Errorf("delay = %v, want 1.5 (seconds): %s", rec["delay"], buf.String())
	}
	if g, _ := rec["g"].(map[string]any); g["wait"] != 120.0 {
		t.Errorf("g.wait = %v, want 120: %s", g["wait"], buf.String())
	}
	buf.Reset()
	text, _, _, err := newLogger(config.Log{Format: "text", Level: "info"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	text.Info("sent", "delay", 1500*time.Millisecond)
	if !bytes.Contains(buf.Bytes(), []byte("delay=1.5s")) {
		t.Errorf("text log: %s", buf.String())
	}
}
