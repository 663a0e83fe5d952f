package dnstest

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// ZoneHead returns the start of a test zone file for origin: $ORIGIN,
// $TTL, SOA and an NS at 127.0.0.1.
func ZoneHead(origin string) string {
	return fmt.Sprintf("$ORIGIN %s.\n$TTL 300\n@ SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n", origin, origin, origin)
}

// SPKISHA256 is the TLSA data of selector 1, matching type 1 for c.
func SPKISHA256(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:])
}

// SPKISHA512 is the TLSA data of selector 1, matching type 2 for c.
func SPKISHA512(c *x509.Certificate) string {
	s := sha512.Sum512(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:])
}

// CertSHA256 is the TLSA data of selector 0, matching type 1 for c.
func CertSHA256(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// CertSHA512 is the TLSA data of selector 0, matching type 2 for c.
func CertSHA512(c *x509.Certificate) string {
	s := sha512.Sum512(c.Raw)
	return hex.EncodeToString(s[:])
}

// PolicyServer is an HTTPS MTA-STS policy server on loopback serving a
// policy per host name ("mta-sts.DOMAIN").
type PolicyServer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	policies map[string]string
	// Fail makes it answer 500 to everything.
	Fail atomic.Bool
	// Fetches counts the requests.
	Fetches atomic.Int32
}

// StartPolicyServer starts a policy server with cert (valid for the
// policy hosts) until the test ends.
func StartPolicyServer(t testing.TB, cert tls.Certificate, policies map[string]string) *PolicyServer {
	t.Helper()
	ps := &PolicyServer{policies: policies}
	ps.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.Fetches.Add(1)
		host, _, _ := net.SplitHostPort(r.Host)
		ps.mu.Lock()
		body, ok := ps.policies[host]
		ps.mu.Unlock()
		if ps.Fail.Load() || r.URL.Path != "/.well-known/mta-sts.txt" || !ok {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(body))
	}))
	ps.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ps.srv.StartTLS()
	t.Cleanup(ps.srv.Close)
	return ps
}

// Port returns the server's port.
func (ps *PolicyServer) Port() int {
	return ps.srv.Listener.Addr().(*net.TCPAddr).Port
}

// PortString returns the server's port as text.
func (ps *PolicyServer) PortString() string { return strconv.Itoa(ps.Port()) }
