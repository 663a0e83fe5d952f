package testrelay

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// HTTPRequest sends one request through hc (http.DefaultClient when nil),
// as a script or a browser might: header "Host" sets the request's Host,
// the others are set as given, and a non-empty body is sent. It fails the
// test when no answer comes within WaitLimit, and returns the status and
// the body.
func HTTPRequest(t testing.TB, hc *http.Client, method, url string, header map[string]string, body string) (int, string) {
	t.Helper()
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}
