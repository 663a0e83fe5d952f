package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/auth"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// authRSSBound is how much ferry serve's resident memory may grow while 200
// parallel logins check argon2id hashes of 4 MiB each: max_auth_checks (4)
// checks at once hold 16 MiB, and the garbage collector may let the heap
// reach about twice its live size, plus the sessions themselves. Without
// the bound the 200 checks would hold 800 MiB. The race detector's shadow
// memory multiplies every allocation, hence the larger bound under -race.
func authRSSBound() int64 {
	if testrelay.RaceEnabled() {
		return 384 << 20
	}
	return 96 << 20
}

// TestParallelAuthMemoryBounded: 200 logins at once (from 40 addresses, so
// the per-address lock-out plays no part) against argon2id hashes. Only
// max_auth_checks run at once; the others wait for a slot, at most
// auth_check_wait, and get 454 4.7.0 when none frees in time. The server's
// peak resident memory stays under authRSSBound.
func TestParallelAuthMemoryBounded(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the server's memory")
	}
	const logins, password = 200, "correct horse"
	hash, err := auth.HashArgon2id(password, auth.Argon2Params{Memory: 4096, Time: 16, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.txt")
	if err := os.WriteFile(users, []byte("app:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, fmt.Sprintf(`[[listener]]
address = "127.0.0.1:2525"
auth_users_file = %q
allow_insecure_auth = true

[limits]
max_auth_checks = 4

[timeouts]
auth_check_wait = "5s"
`, users), "")
	pid := r.Cmd.Process.Pid
	before, err := procStatus(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00app\x00" + password))
	deadline := time.Now().Add(2 * time.Minute)
	var mu sync.Mutex
	codes := map[int]int{}
	var failures []error
	var wg sync.WaitGroup
	for i := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := func() (int, error) {
				c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 2+i%40), r.Addr, deadline)
				if err != nil {
					return 0, err
				}
				defer c.conn.Close()
				if err := c.greet(); err != nil {
					return 0, err
				}
				if err := c.send("AUTH PLAIN " + ir + "\r\n"); err != nil {
					return 0, err
				}
				rep, err := c.readReply()
				if err != nil {
					return 0, err
				}
				if rep.Code == 454 && rep.Text()[:5] != "4.7.0" || rep.Code != 454 && rep.Code != 235 {
					return rep.Code, fmt.Errorf("AUTH: %v, want 235 or 454 4.7.0", rep)
				}
				return rep.Code, nil
			}()
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			if err != nil {
				failures = append(failures, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range failures[:min(len(failures), 5)] {
		t.Error(err)
	}
	peak, err := procStatus(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	growth := peak - before
	t.Logf("%d parallel logins: %d × 235, %d × 454; server RSS %d MB before, peak %d MB (+%d MB, bound %d MB)",
		logins, codes[235], codes[454], before>>20, peak>>20, growth>>20, authRSSBound()>>20)
	if codes[235] == 0 {
		t.Errorf("no login succeeded")
	}
	if growth > authRSSBound() {
		t.Errorf("server RSS grew by %d MB during %d parallel logins, want under %d MB", growth>>20, logins, authRSSBound()>>20)
	}
}

// raiseFileLimit lifts this process's soft RLIMIT_NOFILE to its hard limit
// and returns the soft limit now in force.
func raiseFileLimit(t *testing.T) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("raising RLIMIT_NOFILE: %v", err)
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
	}
	return lim.Cur
}

// TestTrickleKeepsRelayNetworkIn: 2,000 connections from 40 addresses
// outside the relay networks (127.0.0.2 to .41) take every connection they
// are given and trickle an octet every half second, as slowloris clients
// do. A client in the relay networks (127.0.0.1) still gets a message
// through within 2 s: reserved_connections are kept for it.
func TestTrickleKeepsRelayNetworkIn(t *testing.T) {
	const conns, addrs = 2000, 40
	if lim := raiseFileLimit(t); lim < conns+500 {
		t.Skipf("RLIMIT_NOFILE is %d; %d connections need more", lim, conns)
	}
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, `[relay]
networks = ["127.0.0.1/32"]
`, "", routeAll(h.Addr))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	deadline := time.Now().Add(3 * time.Minute)
	first := make(chan int, conns)    // each trickler's first reply code (0: error)
	dials := make(chan struct{}, 100) // at most 100 dials at once
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dials <- struct{}{}
			c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 2+i%addrs), r.Addr, deadline)
			<-dials
			if err != nil {
				first <- 0
				return
			}
			defer c.conn.Close()
			rep, err := c.readReply()
			if err != nil {
				first <- 0
				return
			}
			first <- rep.Code
			if rep.Code != 220 {
				return
			}
			line := "EHLO trickle.test\r\n"
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for k := 0; k < len(line)-2; k++ { // never completes the line
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if c.send(line[k:k+1]) != nil {
					return
				}
			}
			<-stop
		}()
	}
	got := map[int]int{}
	for range conns {
		got[<-first]++
	}
	t.Logf("trickling clients: %d greeted, %d refused 421, %d errors", got[220], got[421], got[0])
	if got[220] == 0 || got[421] == 0 {
		t.Fatalf("first replies %v: want the server full of tricklers", got)
	}
	// One more outside client is refused: the server is full for them.
	if c, err := dialFrom("127.0.0.42", r.Addr, deadline); err == nil {
		if rep, err := c.readReply(); err != nil || rep.Code != 421 {
			t.Errorf("outside client while full: %v (err %v), want 421", rep, err)
		}
		c.conn.Close()
	}

	start := time.Now()
	c, err := dialFrom("127.0.0.1", r.Addr, deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	err = c.greet()
	if err == nil {
		err = c.run(step{"MAIL FROM:<" + sender + ">", 250, ""}, step{"RCPT TO:<user@example.com>", 250, ""},
			step{"DATA", 354, ""}, step{"Subject: through\r\n\r\nthe relay network gets in\r\n.", 250, "2.0.0"})
	}
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("relay-network client during the trickle: %v", err)
	}
	t.Logf("relay-network client's message accepted in %v", elapsed.Round(time.Millisecond))
	if elapsed > 2*time.Second {
		t.Errorf("relay-network client took %v, want within 2s", elapsed)
	}
}

// TestPregreetAndPhaseLimits: through ferry serve, a client outside the
// relay networks that talks before the greeting is refused with 554 5.5.1
// as soon as it does (the 30 s pause is never waited out), a relay-network
// client is greeted at once, and a client that sends NOOPs without ever
// starting a transaction is cut off after hello_phase.
func TestPregreetAndPhaseLimits(t *testing.T) {
	t.Parallel()
	r := startRelay(t, `[relay]
networks = ["127.0.0.1/32"]

[timeouts]
pregreet_wait = "30s"
hello_phase = "1s"
`, "")
	deadline := time.Now().Add(testrelay.WaitLimit)
	early, err := dialFrom("127.0.0.2", r.Addr, deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer early.conn.Close()
	if err := early.send("EHLO early.test\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := early.expect(554, "5.5.1"); err != nil {
		t.Errorf("client talking before the greeting: %v", err)
	}
	if err := early.expectClosed(0); err != nil {
		t.Error(err)
	}

	c, err := dialFrom("127.0.0.1", r.Addr, deadline)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	if err := c.greet(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("100 NOOPs over hello_phase and still connected")
		}
		if err := c.send("NOOP\r\n"); err != nil {
			t.Fatal(err)
		}
		rep, err := c.readReply()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Code == 421 {
			if !strings.HasPrefix(rep.Text(), "4.4.2") {
				t.Errorf("cut off with %v, want 421 4.4.2", rep)
			}
			break
		}
		time.Sleep(50 * time.Millisecond) // the client's own pace
	}
}
