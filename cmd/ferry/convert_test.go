package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ascii := write("ascii.eml", "Subject: hi\r\n\r\nplain\r\n")
	eight := write("8bit.eml", "Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9 au lait, s'il vous plait\r\n")
	bad := write("bad.eml", "From: j\xc3\xb6rg@example.org\r\n\r\nx\r\n")

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // "" means: must be empty
		stderrHas  string
	}{
		{"7-bit passes through", []string{ascii}, 0, "Subject: hi\r\n\r\nplain\r\n", ""},
		{"8-bit converted", []string{eight}, 0, "Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 au lait, s'il vous plait\r\n", ""},
		{"check clean", []string{"--check", ascii}, 0, "", ""},
		{"check needs conversion", []string{"--check", eight}, 1, "", ""},
		{"check error", []string{"--check", bad}, 2, "", "5.6.9"},
		{"error", []string{bad}, 2, "", "needs SMTPUTF8"},
		{"report", []string{"--report", "--check", eight}, 1, "", `"new_cte": "quoted-printable"`},
		{"missing file", []string{filepath.Join(dir, "nope")}, 2, "", "no such file"},
		{"two files", []string{ascii, eight}, 2, "", "Usage"},
		{"help", []string{"-h"}, 0, "", "Exit status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runConvert(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.stderrHas) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderrHas)
			}
		})
	}
}

func TestConvertReportJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.eml")
	if err := os.WriteFile(p, []byte("DKIM-Signature: v=1\r\nSubject: x\r\n\r\n\xff\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runConvert([]string{"--report", p}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep struct {
		Changed    bool `json:"changed"`
		DKIMSigned bool `json:"dkim_signed"`
		Parts      []struct {
			NewCTE string `json:"new_cte"`
		} `json:"parts"`
	}
	if err := json.Unmarshal(stderr.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stderr.String())
	}
	if !rep.Changed || !rep.DKIMSigned || len(rep.Parts) != 1 || rep.Parts[0].NewCTE != "base64" {
		t.Errorf("report %+v", rep)
	}
}
