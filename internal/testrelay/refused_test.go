package testrelay

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestRefusedAddr: a connection to the address is refused, and no listener
// can take its port while the test runs.
func TestRefusedAddr(t *testing.T) {
	addr := RefusedAddr(t)
	for range 3 {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded, want connection refused", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want ECONNREFUSED", addr, err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		t.Fatalf("a listener took the refused address %s", addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("listen on %s: %v, want EADDRINUSE", addr, err)
	}
	if p := RefusedPort(t); p <= 0 {
		t.Errorf("RefusedPort = %d", p)
	}
}
