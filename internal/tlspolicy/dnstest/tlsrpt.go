package dnstest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"
)

// ReportFromMail checks a report mail's form (RFC 8460 §5.3) and returns
// the JSON of its gzip attachment.
func ReportFromMail(t testing.TB, msg []byte) []byte {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"TLS-Report-Domain", "TLS-Report-Submitter", "Subject"} {
		if m.Header.Get(h) == "" {
			t.Errorf("report mail lacks %s", h)
		}
	}
	if m.Header.Get("TLS-Required") != "No" || !strings.HasPrefix(m.Header.Get("Subject"), "Report Domain: ") {
		t.Errorf("report headers %v", m.Header)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("content type %q %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no application/tlsrpt+gzip part: %v", err)
		}
		if p.Header.Get("Content-Type") != "application/tlsrpt+gzip" {
			continue
		}
		if !strings.HasSuffix(p.FileName(), ".json.gz") || strings.Count(p.FileName(), "!") < 3 {
			t.Errorf("attachment file name %q", p.FileName())
		}
		if p.Header.Get("Content-Transfer-Encoding") != "base64" {
			t.Errorf("attachment transfer encoding %q", p.Header.Get("Content-Transfer-Encoding"))
		}
		raw, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		gz, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		js, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
}

// ValidateTLSRPT checks a report against the fields, types and value sets
// of RFC 8460 §4.4 (the JSON schema of its Appendix).
func ValidateTLSRPT(t testing.TB, js []byte) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatalf("report is not JSON: %v: %s", err, js)
	}
	str := func(m map[string]any, k string) string {
		s, ok := m[k].(string)
		if !ok || s == "" {
			t.Errorf("%s: want a non-empty string, got %#v in %s", k, m[k], js)
		}
		return s
	}
	num := func(m map[string]any, k string) {
		f, ok := m[k].(float64)
		if !ok || f < 0 || f != float64(int64(f)) {
			t.Errorf("%s: want a non-negative integer, got %#v", k, m[k])
		}
	}
	obj := func(m map[string]any, k string) map[string]any {
		o, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("%s: want an object, got %#v in %s", k, m[k], js)
		}
		return o
	}
	for _, k := range []string{"organization-name", "contact-info", "report-id"} {
		str(raw, k)
	}
	dr := obj(raw, "date-range")
	for _, k := range []string{"start-datetime", "end-datetime"} {
		if _, err := time.Parse(time.RFC3339, str(dr, k)); err != nil {
			t.Errorf("%s is not an RFC 3339 date-time: %v", k, err)
		}
	}
	pols, ok := raw["policies"].([]any)
	if !ok || len(pols) == 0 {
		t.Fatalf("policies: %#v", raw["policies"])
	}
	resultTypes := []string{"starttls-not-supported", "certificate-host-mismatch", "certificate-expired", "certificate-not-trusted",
		"validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"}
	for _, pv := range pols {
		p, _ := pv.(map[string]any)
		pol := obj(p, "policy")
		if typ := str(pol, "policy-type"); !slices.Contains([]string{"tlsa", "sts", "no-policy-found"}, typ) {
			t.Errorf("policy-type %q", typ)
		}
		str(pol, "policy-domain")
		for _, k := range []string{"policy-string", "mx-host"} {
			if v, ok := pol[k]; ok {
				list, ok := v.([]any)
				if !ok {
					t.Errorf("%s: want an array", k)
				}
				for _, e := range list {
					if _, ok := e.(string); !ok {
						t.Errorf("%s: want strings, got %#v", k, e)
					}
				}
			}
		}
		sum := obj(p, "summary")
		num(sum, "total-successful-session-count")
		num(sum, "total-failure-session-count")
		if fd, ok := p["failure-details"]; ok {
			list, _ := fd.([]any)
			for _, e := range list {
				d, _ := e.(map[string]any)
				if rt := str(d, "result-type"); !slices.Contains(resultTypes, rt) {
					t.Errorf("result-type %q is not one of RFC 8460 §4.3's", rt)
				}
				num(d, "failed-session-count")
			}
		}
	}
}
