package queue

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	crashDirEnv   = "FERRY_QUEUE_CRASH_DIR"
	crashSeqEnv   = "FERRY_QUEUE_CRASH_SEQ"
	crashRoundEnv = "FERRY_QUEUE_CRASH_ROUNDS"
)

// crashBodySize varies message sizes with the sequence number.
func crashBodySize(seq int) int { return 200 + seq%7*1500 }

// TestCrashChild is the child of TestCrash: it puts messages as fast as it
// can from several goroutines and prints "ID SEQ" after each Put returns.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrash only")
	}
	base, _ := strconv.Atoi(os.Getenv(crashSeqEnv))
	cfg := testConfig(dir, nil, nil)
	cfg.GCInterval = 50 * time.Millisecond
	q, err := Open(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ { // bounded; the parent kills us long before
				seq := base + i*8 + w
				id, err := q.Put(context.Background(), testEnv("s@example.org", "r@example.net"), bytes.NewReader(bodyFor(seq, crashBodySize(seq))))
				if err != nil {
					fmt.Fprintln(os.Stderr, "put:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintf(out, "%s %d\n", id, seq)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	q.Close()
}

// TestCrash kills a child that is putting messages with SIGKILL at random
// moments and checks that every message the child saw acknowledged
// survives, intact.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv(crashRoundEnv)); err == nil && v > 0 {
		rounds = v
	}
	dir := t.TempDir()
	acked := map[string]int{}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeqEnv+"="+strconv.Itoa(round*10000000))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Wait for the first acknowledgement (or 20 s), then kill at a
		// random moment.
		var got []string
		select {
		case l, ok := <-lines:
			if ok {
				got = append(got, l)
			}
		case <-time.After(20 * time.Second):
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		for l := range lines {
			got = append(got, l)
		}
		cmd.Wait()
		if len(got) == 0 {
			t.Fatalf("round %d: child acknowledged nothing; stderr:\n%s", round, stderr.String())
		}
		for _, l := range got {
			id, seqs, ok := strings.Cut(l, " ")
			seq, err := strconv.Atoi(seqs)
			if !ok || err != nil {
				continue // a line cut by the kill is never complete with its newline
			}
			acked[id] = seq
		}
		q := mustOpen(t, testConfig(dir, nil, nil))
		for id, seq := range acked {
			if b := readBodyOf(t, q, id); !bytes.Equal(b, bodyFor(seq, crashBodySize(seq))) {
				t.Fatalf("round %d: message %s (seq %d) damaged", round, id, seq)
			}
		}
		t.Logf("round %d: %d acknowledged in this round, %d in all, %d queued", round, len(got), len(acked), len(q.msgs))
		q.Close()
	}
}
