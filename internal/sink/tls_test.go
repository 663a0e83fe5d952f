package sink

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key into dir,
// made at test time, and returns the files and a pool that trusts it.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	c := testrelay.NewTestCert(t, "sink.test")
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c.WriteFiles(t, certFile, keyFile)
	return certFile, keyFile, c.Roots
}

// TestSTARTTLS checks that a sink with a certificate offers STARTTLS,
// completes the handshake with that certificate, and records in the
// sidecar that the message came over TLS.
func TestSTARTTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := writeSelfSigned(t, t.TempDir())
	s := startSink(t, Options{Dir: dir, Keywords: []string{"PIPELINING"}, TLSCert: certFile, TLSKey: keyFile})
	c := dial(t, s.Addr())
	c.do("", "220 sink.test ESMTP Ferry\r\n")
	c.do("EHLO relay.test\r\n", "250-sink.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
	c.do("STARTTLS\r\n", "220 Ready to start TLS\r\n")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	c.do("EHLO relay.test\r\n", "250-sink.test\r\n250 PIPELINING\r\n")
	c.do("MAIL FROM:<a@example.com>\r\n", "250 Ok\r\n")
	c.do("RCPT TO:<b@example.org>\r\n", "250 Ok\r\n")
	c.do("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n")
	c.do("Subject: t\r\n\r\nover TLS\r\n.\r\n", "250 Ok: queued as ")
	m := waitN(t, s, 1)
	sc, _, err := ReadCapture(dir, m[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sc.TLS || sc.Protocol != "ESMTPS" {
		t.Errorf("sidecar tls=%v protocol=%q, want true and ESMTPS", sc.TLS, sc.Protocol)
	}
}

// TestTLSOptions checks that a certificate without its key, or a file that
// is not one, stops Start with an error naming the file.
func TestTLSOptions(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"cert only", Options{TLSCert: certFile}, "sink: want a TLS certificate and key together"},
		{"key only", Options{TLSKey: keyFile}, "sink: want a TLS certificate and key together"},
		{"key as cert", Options{TLSCert: keyFile, TLSKey: keyFile}, "sink: loading TLS certificate " + keyFile},
	} {
		s, err := Start(tc.opts)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: Start = %v, want an error starting %q", tc.name, err, tc.want)
		}
	}
}
