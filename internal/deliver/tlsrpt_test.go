package deliver

import (
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
	"github.com/ferrymta/ferry/internal/tlspolicy"
	"github.com/ferrymta/ferry/internal/tlspolicy/dnstest"
)

// capturedMail is a message a test's Put received.
type capturedMail struct {
	env  smtp.Envelope
	body []byte
}

// reportServer receives TLS reports by HTTPS POST (RFC 8460 §5.4).
type reportServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  [][]byte
	errs []string
}

func startReportServer(t *testing.T, ca testrelay.TestCA) *reportServer {
	t.Helper()
	rs := &reportServer{}
	cert := ca.Issue(t, "rpt.plain.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "rpt.plain.test")
	rs.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/tlsrpt" || r.Header.Get("Content-Type") != "application/tlsrpt+gzip" {
			rs.errs = append(rs.errs, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		if err == nil {
			var b []byte
			if b, err = io.ReadAll(zr); err == nil {
				rs.got = append(rs.got, b)
			}
		}
		if err != nil {
			rs.errs = append(rs.errs, err.Error())
			http.Error(w, "bad", http.StatusBadRequest)
		}
	}))
	rs.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	rs.srv.StartTLS()
	t.Cleanup(rs.srv.Close)
	return rs
}

func (rs *reportServer) port() string {
	_, p, _ := net.SplitHostPort(rs.srv.Listener.Addr().String())
	return p
}

func (rs *reportServer) reports() [][]byte {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.got
}

// validReport validates a report against RFC 8460 and decodes it.
func validReport(t *testing.T, js []byte) tlspolicy.Report {
	t.Helper()
	dnstest.ValidateTLSRPT(t, js)
	var r tlspolicy.Report
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
