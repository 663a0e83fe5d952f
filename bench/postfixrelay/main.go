// Command postfixrelay runs a private Postfix instance configured as a relay
// for bench/compare.sh: its own configuration, queue and data directories
// (under /var/tmp), smtpd on a loopback port, relayhost = the counting sink,
// mynetworks = loopback, no local delivery. It reuses internal/postfixtest's
// set-up, prints one line "addr=ADDR pid=MASTER_PID dir=DIR" on standard
// output once Postfix accepts connections, and stops the instance and
// removes its directories when it gets SIGTERM or SIGINT, when standard
// input ends, or after -max-life. It needs root and Debian's postfix.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/postfixtest"
)

func main() {
	sink := flag.String("sink", "", "the next hop (relayhost), 127.0.0.1:PORT")
	port := flag.Int("port", 0, "loopback port for Postfix's smtpd (0: a free one)")
	procs := flag.Int("process-limit", 250, "default_process_limit (Postfix's default is 100; 200 sessions need more)")
	maxLife := flag.Duration("max-life", time.Hour, "stop the instance after this long in any case")
	flag.Parse()
	if *sink == "" {
		fmt.Fprintln(os.Stderr, "postfixrelay: -sink is required")
		os.Exit(2)
	}
	t := newProgramTB(os.Stderr)
	in := postfixtest.Start(t, postfixtest.Options{
		Mode:      postfixtest.ModeRelay,
		Port:      *port,
		RelayHost: *sink,
		Hostname:  "postfix-relay.bench.invalid",
		ExtraMain: map[string]string{
			"default_process_limit": strconv.Itoa(*procs),
			// Connections to the sink: like Ferry, keep reusing them while
			// there is a backlog (Postfix's default, stated here).
			"smtp_connection_cache_on_demand": "yes",
		},
	})
	pid, err := masterPID(in.Dir())
	if err != nil {
		t.Fatalf("postfixrelay: %v", err)
	}
	fmt.Printf("addr=%s pid=%d dir=%s\n", in.Addr(), pid, in.Dir())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	go func() {
		// Bounded by the input: ends at EOF or on a read error.
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
		}
		close(eof)
	}()
	select {
	case <-sig:
	case <-eof:
	case <-time.After(*maxLife):
		fmt.Fprintln(os.Stderr, "postfixrelay: -max-life reached")
	}
	t.runCleanups()
}

// masterPID reads the Postfix master's process ID from the instance's
// queue directory.
func masterPID(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0, fmt.Errorf("reading master.pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("master.pid: %w", err)
	}
	return pid, nil
}
