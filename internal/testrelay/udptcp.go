package testrelay

import (
	"fmt"
	"net"
	"testing"
)

// ListenUDPTCP opens a UDP socket and a TCP listener on the same loopback
// port, as a DNS server needs (RFC 1035 §4.2, RFC 7766). The UDP port comes
// from the kernel; when its TCP twin is already taken (another test's
// connection may hold it), it tries another, up to 100 times. The caller
// closes both, typically through the server that uses them.
func ListenUDPTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range 100 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testrelay: UDP listener: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		lastErr = err
	}
	t.Fatalf("testrelay: no loopback port free for both UDP and TCP: %v", fmt.Errorf("last try: %w", lastErr))
	return nil, nil
}
