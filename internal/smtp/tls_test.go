package smtp

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestCipherSuitesNoCBC(t *testing.T) {
	ids := CipherSuites()
	if len(ids) == 0 {
		t.Fatal("no cipher suites")
	}
	for _, id := range ids {
		name := tls.CipherSuiteName(id)
		if strings.Contains(name, "_CBC_") || !strings.HasPrefix(name, "TLS_ECDHE_") {
			t.Errorf("offered %s", name)
		}
	}
}
