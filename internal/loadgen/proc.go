package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for every architecture Go runs on (proc(5)).
const clockTicks = 100

// procStat is the part of /proc/PID/stat a process tree's CPU needs.
type procStat struct {
	pid, ppid int
	// ticks is utime + stime + cutime + cstime: the process's own CPU
	// time and that of its children it has waited for.
	ticks int64
}

// readProcStat parses /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ")".
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(pid, b)
}

// parseProcStat parses the contents of /proc/PID/stat (proc(5)).
func parseProcStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	st := procStat{pid: pid, ppid: ppid}
	for _, k := range []int{11, 12, 13, 14} { // fields 14..17
		n, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: field %d: %w", pid, k+3, err)
		}
		st.ticks += n
	}
	return st, nil
}

// TreeCPU returns the CPU time (user + system) used so far by process pid
// and all its descendants, living or ended: for every living process of the
// tree it adds utime+stime (its own time) and cutime+cstime (the time of
// the children it has reaped, which the kernel adds to the parent when
// wait() collects them, including their own reaped descendants). So a
// Postfix smtpd or smtp process that exits between two readings is still
// counted, in the master's cutime, once the master reaps it. The difference
// of two readings is the tree's CPU time in between. Children not yet
// reaped when the second reading is taken are counted as long as /proc
// still lists them (zombies keep their stat); a descendant that was
// re-parented away from the tree (a daemon that double-forks) is lost,
// which Postfix's and Ferry's processes never do.
func TreeCPU(pid int) (time.Duration, error) {
	root, err := readProcStat(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("reading /proc: %w", err)
	}
	children := map[int][]procStat{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		st, err := readProcStat(p)
		if err != nil {
			continue // it ended meanwhile: its time is in its parent's cutime
		}
		children[st.ppid] = append(children[st.ppid], st)
	}
	total := int64(0)
	stack := []procStat{root}
	for steps := 0; len(stack) > 0 && steps <= len(entries)+1; steps++ {
		st := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		total += st.ticks
		stack = append(stack, children[st.pid]...)
	}
	return time.Duration(total) * time.Second / clockTicks, nil
}

// ResidentKiB returns the resident set size of process pid (VmRSS of
// /proc/PID/status) in KiB.
func ResidentKiB(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("process %d: VmRSS: %w", pid, err)
				}
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("process %d: no VmRSS in /proc/%d/status", pid, pid)
}
