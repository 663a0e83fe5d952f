package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// hostileConfig gives the relay short idle timeouts, so silent and
// half-open clients are cut off within the test, and the smallest
// recipient limit RFC 5321 allows.
const hostileConfig = `
[[listener]]
address = "127.0.0.1:2525"
max_recipients = 100

[limits]
max_errors = 20
max_connections_per_ip = 50

[timeouts]
greeting = "3s"
command = "3s"
data_block = "3s"
data_total = "10s"
`

// patientConfig has the per-IP limit of hostileConfig with idle timeouts
// no setup on a loaded machine comes near, for the connection-limit case.
const patientConfig = `
[limits]
max_connections_per_ip = 50

[timeouts]
greeting = "10m"
command = "10m"
`

// hostileBudget bounds every hostile client's connections: generous, as
// the machine running the tests may be busy. No result depends on it
// unless Ferry stops answering.
const hostileBudget = 3 * time.Minute

// hostileCase is one kind of hostile client: run returns nil when Ferry
// answered as it must. src is the client's own loopback address.
type hostileCase struct {
	name  string
	src   string
	conns int // how many such clients run at once
	run   func(addr, src string, deadline time.Time, rng *rand.Rand) error
}

// hostileCases lists the hostile clients, each bounded in octets,
// connections and time; r is the relay they attack (the half-open case
// watches its log).
func hostileCases(r *relay) []hostileCase {
	return []hostileCase{
		{"random garbage lines", "127.0.0.2", 8, garbageLines},
		{"NUL octets", "127.0.0.3", 4, nulOctets},
		{"100 KB command lines", "127.0.0.4", 4, longLines},
		{"binary before EHLO", "127.0.0.5", 4, binaryBeforeEHLO},
		{"TLS ClientHello on the plain port", "127.0.0.6", 4, tlsOnPlainPort},
		{"10,000 pipelined NOOPs", "127.0.0.7", 4, noopFlood},
		{"NOOP flood before EHLO", "127.0.0.7", 2, noopFloodBeforeEHLO},
		{"half-open, never reads", "127.0.0.8", 6, halfOpen(r)},
		{"content without DATA", "127.0.0.9", 4, contentWithoutData},
		{"300 recipients", "127.0.0.10", 4, recipientOvershoot},
	}
}

// TestHostileClients runs every hostile client at once against ferry serve
// (and, at the same time, more connections than the per-IP limit against a
// second one with long idle timeouts) while a well-behaved client sends a
// message every 100 ms. Ferry must stay
// up, give each hostile client the reply that fits (500 5.5.2 for a long
// or malformed line, 421 4.7.0 after too many errors, 421 4.4.2 after an
// idle timeout, 452 4.5.3 beyond max_recipients, 554 5.5.0 for forbidden
// pipelining, 421 4.7.0 beyond the per-IP connection limit), and queue and
// deliver every one of the good client's messages.
func TestHostileClients(t *testing.T) {
	t.Parallel()
	start := time.Now()
	deadline := start.Add(hostileBudget)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, hostileConfig, "", routeAll(h.Addr))
	patient := startRelay(t, patientConfig, "", routeAll(h.Addr))

	stop := make(chan struct{})
	goodDone := make(chan []string)
	go func() { goodDone <- goodClient(t, r.Addr, stop, deadline) }()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := perIPLimit(patient.Addr, "127.0.0.11", deadline, nil); err != nil {
			t.Errorf("more connections than the per-IP limit: %v", err)
		}
	}()
	for ci, hc := range hostileCases(r) {
		for i := 0; i < hc.conns; i++ {
			wg.Add(1)
			rng := rand.New(rand.NewPCG(seed, uint64(ci*100+i)))
			go func() {
				defer wg.Done()
				t0 := time.Now()
				if err := hc.run(r.Addr, hc.src, deadline, rng); err != nil {
					t.Errorf("%s #%d (after %v): %v", hc.name, i, time.Since(t0).Round(time.Millisecond), err)
				}
			}()
		}
	}
	wg.Wait()
	hostileTime := time.Since(start)
	close(stop)
	ids := <-goodDone

	select {
	case <-r.Done():
		t.Fatalf("ferry serve exited during the hostile clients: %v", r.Cmd.ProcessState)
	default:
	}
	if len(ids) == 0 {
		t.Errorf("the good client sent no message in %v", hostileTime)
	}
	for _, id := range ids {
		r.WaitLog(t, "msg=removed", "id="+id)
	}
	caps := h.waitCaptures(t, len(ids))
	seqs := map[string]int{}
	for _, cp := range caps {
		if cp.sc.From != "<"+sender+">" {
			t.Errorf("message from %s reached the hop", cp.sc.From)
			continue
		}
		seqs[seqOf(cp.data)]++
	}
	for i := range ids {
		if n := seqs[fmt.Sprint(i)]; n != 1 {
			t.Errorf("good message %d arrived %d times", i, n)
		}
	}
	// Still up and serving after all of it.
	testrelay.SendOne(t, r.Addr, sender, []string{"after@example.com"}, []byte("Subject: after\r\n\r\nstill here\r\n"))
	t.Logf("hostile clients done in %v; %d good messages delivered; whole test %v",
		hostileTime.Round(time.Millisecond), len(ids), time.Since(start).Round(time.Millisecond))
}

// goodClient sends one message every 100 ms (or as fast as the relay
// answers), each on its own connection from 127.0.0.1, until stop closes;
// every one must be queued. It returns the queue IDs in order.
func goodClient(t *testing.T, addr string, stop <-chan struct{}, deadline time.Time) []string {
	var ids []string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return ids
		case <-tick.C:
		}
		id, err := goodMessage(addr, seq, deadline)
		if err != nil {
			t.Errorf("good message %d: %v", seq, err)
			return ids
		}
		ids = append(ids, id)
	}
}

// goodMessage sends message seq in a session of its own.
func goodMessage(addr string, seq int, deadline time.Time) (string, error) {
	c, err := dialFrom("127.0.0.1", addr, deadline.Add(3*time.Second))
	if err != nil {
		return "", err
	}
	defer c.conn.Close()
	if err := c.greet(); err != nil {
		return "", err
	}
	if err := c.run(
		step{"MAIL FROM:<" + sender + ">", 250, "2.1.0"},
		step{"RCPT TO:<good@example.com>", 250, "2.1.5"},
		step{"DATA", 354, ""},
	); err != nil {
		return "", err
	}
	content := fmt.Sprintf("From: <%s>\r\nSubject: good %d\r\nX-E2E-Seq: %d\r\n\r\nserved while under attack\r\n.\r\n", sender, seq, seq)
	if err := c.send(content); err != nil {
		return "", err
	}
	rep, err := c.expect(250, "2.0.0")
	if err != nil {
		return "", fmt.Errorf("content: %w", err)
	}
	_, id, _ := strings.Cut(rep.Text(), "queued as ")
	if f := strings.Fields(id); len(f) > 0 {
		id = f[0]
	}
	if id == "" {
		return "", fmt.Errorf("250 without a queue ID: %v", rep)
	}
	return id, c.cmd("QUIT", 221, "")
}
