package testrelay

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a loopback address ("127.0.0.1:PORT") nobody listens on,
// for a process that must be told its address before it starts. The port
// lies below the kernel's ephemeral range, so no listener on port 0 (any
// test's relay, sink or admin API) can be given it in the meantime, as
// happens with a port the kernel chose and that was closed again.
func FreePort(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	for range 200 {
		port := 10000 + rand.IntN(low-10000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // in use: try another
		}
		ln.Close()
		return addr
	}
	t.Fatalf("no free loopback port found from 10000 to %d", low)
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// net.ipv4.ip_local_port_range; 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &low, &high); err != nil || low <= 11000 {
		return 32768
	}
	return low
}
