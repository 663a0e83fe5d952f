package main

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/route"
)

// TestDeliverConfigCAFile checks that delivery.tls_ca_file becomes the
// delivery agent's RootCAs, and that a file without certificates, or no
// file, stops the start with an error naming the file.
func TestDeliverConfigCAFile(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	cert := writeCert(t, caFile, filepath.Join(dir, "key.pem"))
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	table, err := route.NewTable(route.Options{})
	if err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	dc, err := deliverConfig(cfg, table, nil)
	if err != nil || dc.RootCAs != nil {
		t.Fatalf("no tls_ca_file: RootCAs %v, err %v; want nil (system roots)", dc.RootCAs, err)
	}

	cfg.Delivery.TLSCAFile = caFile
	dc, err = deliverConfig(cfg, table, nil)
	if err != nil {
		t.Fatalf("deliverConfig: %v", err)
	}
	want := x509.NewCertPool()
	want.AddCert(cert)
	if dc.RootCAs == nil || !dc.RootCAs.Equal(want) {
		t.Errorf("RootCAs does not hold the CA file's certificate")
	}

	for _, tc := range []struct{ name, file, want string }{
		{"no certificate", notPEM, "delivery.tls_ca_file: " + notPEM + ": no PEM certificate found"},
		{"missing", filepath.Join(dir, "missing.pem"), "delivery.tls_ca_file: reading CA file: open " + filepath.Join(dir, "missing.pem")},
	} {
		cfg.Delivery.TLSCAFile = tc.file
		if _, err := deliverConfig(cfg, table, nil); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one starting %q", tc.name, err, tc.want)
		}
	}
}
