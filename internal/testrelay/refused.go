package testrelay

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// RefusedAddr returns a loopback address ("127.0.0.1:PORT") where every
// connection is refused, for as long as the test runs. The port belongs to
// a TCP socket that is bound but never listens, kept open until the test
// ends: Linux answers a SYN to it with a RST (ECONNREFUSED), the kernel
// hands that port to no other socket (its bind takes it without
// SO_REUSEADDR, so even a listener asking for it by number fails with
// EADDRINUSE), and no other test can start a server there, as it could at
// the port of a listener that was closed again.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("refused address: socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("refused address: bind 127.0.0.1:0: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("refused address: getsockname: %v", err)
	}
	in, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("refused address: getsockname gave %T, want an IPv4 address", sa)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in.Port))
}

// RefusedPort is RefusedAddr's port, for tests that configure a host and
// a port apart.
func RefusedPort(t testing.TB) int {
	t.Helper()
	_, p, err := net.SplitHostPort(RefusedAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
