package loadgen

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "123 (we ird) (name) S 77 123 123 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 100 1000 10 18446744073709551615\n"
	st, err := parseProcStat(123, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 77 || st.ticks != 250+50+7+3 {
		t.Errorf("parseProcStat = %+v; want ppid 77, ticks 310", st)
	}
	if _, err := parseProcStat(1, []byte("1 (x) S 0")); err == nil {
		t.Error("short stat line accepted")
	}
}

func TestTreeCPUCountsReapedChildren(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A child that burns CPU and exits: once reaped, its time must show in
	// this process's cutime, so the tree's total grows by at least most of
	// what the child used.
	cmd := exec.Command("/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run /bin/sh: %v", err)
	}
	child := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	after, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if child < 20*time.Millisecond {
		t.Fatalf("the child used only %v of CPU: too little to check", child)
	}
	if after-before < child/2 {
		t.Errorf("tree CPU grew by %v; the reaped child used %v", after-before, child)
	}
	if after < before {
		t.Errorf("tree CPU went down: %v → %v", before, after)
	}
	if _, err := TreeCPU(1 << 30); err == nil {
		t.Error("TreeCPU of a missing process succeeded")
	}
}

func TestResidentKiB(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	kib, err := ResidentKiB(os.Getpid())
	if err != nil || kib <= 0 {
		t.Errorf("ResidentKiB(self) = %d, %v", kib, err)
	}
}
