//go:build !race

package smtpd

import (
	"bufio"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// idleSessionBytes opens n idle sessions (greeted, waiting for a command)
// and returns the heap and stack memory they hold, per session.
func idleSessionBytes(tb testing.TB, n int) float64 {
	cfg := testConfig()
	cfg.MaxConnections = 0
	cfg.MaxConnectionsPerIP = 0
	_, addr := startServerTB(tb, cfg)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 64)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			tb.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReaderSize(c, 16).Read(buf); err != nil { // the greeting
			tb.Fatalf("greeting %d: %v", i, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)
	return used / float64(n)
}

// startServerTB is startServer for benchmarks too.
func startServerTB(tb testing.TB, cfg Config) (*Server, string) {
	if t, ok := tb.(*testing.T); ok {
		return startServer(t, cfg, &memStore{}, nil)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := New(cfg, &memStore{}, nil)
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Shutdown(tb.Context()) })
	return srv, l.Addr().String()
}

// TestIdleSessionMemory checks an idle session costs at most 32 KiB. The
// client side of each connection lives in the same process and is counted
// too, so the figure is an upper bound.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 connections")
	}
	per := idleSessionBytes(t, 1000)
	t.Logf("%.0f bytes per idle session (client side included)", per)
	if per > 32<<10 {
		t.Fatalf("%.0f bytes per idle session, want <= %d", per, 32<<10)
	}
}

// BenchmarkIdleSessions reports the memory of 10,000 idle sessions (fewer
// when the open-file limit cannot hold both ends of each); run it with
// -benchtime=1x.
func BenchmarkIdleSessions(b *testing.B) {
	n := 10000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && int(lim.Cur) < 2*n+200 {
		n = (int(lim.Cur) - 200) / 2
	}
	var per float64
	for range b.N {
		per = idleSessionBytes(b, n)
	}
	b.ReportMetric(per, "B/session")
	b.ReportMetric(float64(n), "sessions")
}
