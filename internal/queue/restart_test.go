package queue

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// spoolBytes returns the disk space the files in dir take.
func spoolBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err != nil {
			t.Fatal(err)
		}
		n += st.Blocks * 512
	}
	return n
}

// TestRestartsKeepSpoolBounded stops and reopens a queue that holds
// undelivered messages many times: the spool must not grow by a segment
// per restart.
func TestRestartsKeepSpoolBounded(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, nil, nil)
	const rounds = 30
	var first int64
	for round := range rounds {
		q := mustOpen(t, cfg)
		for i := range 5 {
			putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(round*10+i, 300))
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		n := spoolBytes(t, dir)
		if round == 0 {
			first = n
		}
		// 150 messages of 300 octets fit in the first segment; two
		// segments' worth is generous.
		if n > first+2*cfg.SegmentSize {
			t.Fatalf("round %d: spool is %d octets, was %d after the first run", round, n, first)
		}
	}
	q := mustOpen(t, cfg)
	defer q.Close()
	if got := len(q.msgs); got != rounds*5 {
		t.Fatalf("%d messages queued after %d restarts, want %d", got, rounds, rounds*5)
	}
	if st := q.Stats(); st.Segments > 2 {
		t.Fatalf("%d segments after %d restarts", st.Segments, rounds)
	}
}

const restartDirEnv = "FERRY_QUEUE_RESTART_DIR"

// TestRestartChild is the child of TestKilledRestartsKeepSpoolBounded: it
// puts three messages, says "ready" and waits to be killed.
func TestRestartChild(t *testing.T) {
	dir := os.Getenv(restartDirEnv)
	if dir == "" {
		t.Skip("child process of TestKilledRestartsKeepSpoolBounded only")
	}
	q, err := Open(testConfig(dir, nil, nil))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	for i := range 3 {
		putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(i, 500))
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // bounded; the parent kills us long before
	os.Exit(5)
}

// TestKilledRestartsKeepSpoolBounded kills a process holding the queue with
// SIGKILL, round after round, and checks that the spool does not grow by
// the segments (active and spare) each run preallocates.
func TestKilledRestartsKeepSpoolBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("kill loop skipped in -short mode")
	}
	dir := t.TempDir()
	const rounds = 12
	segSize := testConfig(dir, nil, nil).SegmentSize
	var first int64
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRestartChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), restartDirEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		ready := false
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready = true
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if !ready {
			t.Fatalf("round %d: child never became ready", round)
		}
		n := spoolBytes(t, dir)
		if round == 0 {
			first = n
		}
		if n > first+2*segSize {
			t.Fatalf("round %d: spool is %d octets, was %d after the first run", round, n, first)
		}
		t.Logf("round %d: spool %d octets", round, n)
	}
	q := mustOpen(t, testConfig(dir, nil, nil))
	defer q.Close()
	if got := len(q.msgs); got != rounds*3 {
		t.Fatalf("%d messages queued after %d killed runs, want %d", got, rounds, rounds*3)
	}
}
