package deliver

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
)

// TestNoCBCSHA1Outbound: a next hop whose TLS 1.2 offers only CBC suites
// with SHA-1 MACs finds no suite in common, so a route requiring TLS
// defers with 4.7.5 instead of sending over such a suite.
func TestNoCBCSHA1Outbound(t *testing.T) {
	cert, roots := testCerts(t)
	hop := newFakeHop(t, "STARTTLS")
	hop.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}}
	hop.start()
	q := newMemQueue()
	rt := hop.route()
	rt.Policy.TLS = route.TLSRequired
	a, _ := testAgent(t, q, rt, func(c *Config) { c.RootCAs = roots })
	a.DeliverLease(context.Background(), lease(testMessage("CBC", plainMsg, "x@hop.test")))
	q.expect(t, "CBC", 0, queue.Deferred, "451 4.7.5")
}
