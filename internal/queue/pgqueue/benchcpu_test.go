package pgqueue

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuUse is CPU time used so far: by this process (client: the queue, the
// driver, the benchmark's writers) and by the test cluster's server
// processes (every backend and background process).
type cpuUse struct{ client, server time.Duration }

// measureCPU returns the CPU time used so far; server is 0 where the
// cluster's processes cannot be read (no /proc).
func measureCPU() cpuUse {
	var u cpuUse
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if cluster != nil {
		u.server = serverCPU(filepath.Join(cluster.Dir, "data", "postmaster.pid"))
	}
	return u
}

// serverCPU returns the CPU time of the postmaster named in pidFile and of
// its children.
func serverCPU(pidFile string) time.Duration {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pm, _, _ := strings.Cut(string(b), "\n")
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After "(comm)": state, ppid, … utime is field 14 and stime 15.
		i := strings.LastIndexByte(string(st), ')')
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 13 || (e.Name() != pm && f[1] != pm) {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		sy, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + sy
	}
	return time.Duration(ticks) * clockTick
}

// reportCPU reports the CPU time per message used since start by the
// client and, when server is set and it was measured, by the server.
func reportCPU(b *testing.B, start cpuUse, server bool) {
	end := measureCPU()
	n := float64(b.N)
	b.ReportMetric(float64((end.client-start.client).Microseconds())/n, "client-cpu-µs/msg")
	if server && end.server > 0 {
		b.ReportMetric(float64((end.server-start.server).Microseconds())/n, "server-cpu-µs/msg")
	}
}
