package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// writeCert writes a fresh certificate for 127.0.0.1 and relay.test and its
// key to certFile and keyFile, and returns the certificate.
func writeCert(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	c := testrelay.NewTestCert(t, "relay.test", "relay.test")
	c.WriteFiles(t, certFile, keyFile)
	return c.Leaf
}

// syncBuffer is a buffer written by one goroutine and read by another.
type syncBuffer = testrelay.SyncBuffer

// waitFor polls b until it contains s, for at most waitLimit.
func waitFor(t *testing.T, b *syncBuffer, s string) string {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out := b.String(); strings.Contains(out, s) {
			return out
		}
	}
	t.Fatalf("no %q within %v; got:\n%s", s, waitLimit, b.String())
	return ""
}

// smtpClient is a minimal client for the serve test.
type smtpClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (c *smtpClient) cmd(line string) string {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if line != "" {
		if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
			c.t.Fatalf("send %q: %v", line, err)
		}
	}
	var reply strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("after %q: %v (read %q)", line, err, reply.String())
		}
		reply.WriteString(l)
		if len(l) < 4 || l[3] != '-' {
			return reply.String()
		}
	}
}

// startTLS runs STARTTLS and returns the certificate the server showed.
func (c *smtpClient) startTLS(roots *x509.CertPool) *x509.Certificate {
	c.t.Helper()
	if r := c.cmd("STARTTLS"); !strings.HasPrefix(r, "220 ") {
		c.t.Fatalf("STARTTLS: %q", r)
	}
	tc := tls.Client(c.conn, &tls.Config{RootCAs: roots, ServerName: "relay.test"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return tc.ConnectionState().PeerCertificates[0]
}

func dialSMTP(t *testing.T, addr string) *smtpClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &smtpClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if r := c.cmd(""); !strings.HasPrefix(r, "220 relay.test ") {
		t.Fatalf("greeting %q", r)
	}
	return c
}

// waitLimit bounds every wait of these tests for an event: generous, as
// CI runs on a busy machine; only a failing test waits this long.
const waitLimit = testrelay.WaitLimit
