package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/config"
)

// TestStartAdminWarnsOffLoopback checks that a TCP admin API off loopback
// starts with a warning, on loopback without one, and not at all without
// its token file.
func TestStartAdminWarnsOffLoopback(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := http.NotFoundHandler()
	for _, tc := range []struct {
		addr, tokenFile string
		warn            bool
		err             string
	}{
		{"127.0.0.1:0", token, false, ""},
		{"0.0.0.0:0", token, true, ""},
		{"127.0.0.1:0", "", false, "needs admin.token_file"},
	} {
		cfg := config.Default()
		cfg.Queue.Spool = t.TempDir()
		cfg.Admin.Address, cfg.Admin.TokenFile = tc.addr, tc.tokenFile
		var logs syncBuffer
		al, err := startAdmin(cfg, h, slog.New(slog.NewTextHandler(&logs, nil)), io.Discard)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s without a token file: %v", tc.addr, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		al.close()
		if got := strings.Contains(logs.String(), "admin API on a non-loopback address"); got != tc.warn {
			t.Errorf("%s: warning logged %v, want %v:\n%s", tc.addr, got, tc.warn, logs.String())
		}
	}
}
