package e2e

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestPartialDeferral: in one transaction the hop defers one recipient and
// accepts the other; the retry goes to the deferred recipient only, so
// each gets the message exactly once.
func TestPartialDeferral(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--reply", "RCPT#1:later@*=451 4.2.1 mailbox busy")
	r := startRelay(t, shortRetry, "", routeAll(h.Addr))
	id := testrelay.SendOne(t, r.Addr, sender, []string{"later@example.com", "now@example.com"}, testrelay.ReadTestdata(t, "pure-ascii.eml"))
	r.WaitLog(t, "msg=removed", "id="+id)
	got := map[string]int{}
	var txs []string
	for _, cp := range h.captures(t) {
		var rs []string
		for _, rc := range cp.sc.Rcpts {
			got[rc.To]++
			rs = append(rs, rc.To)
		}
		txs = append(txs, strings.Join(rs, ","))
	}
	if got["<later@example.com>"] != 1 || got["<now@example.com>"] != 1 || len(got) != 2 {
		t.Errorf("deliveries per recipient %v (transactions %q), want each once", got, txs)
	}
	if len(txs) != 2 {
		t.Errorf("%d transactions %q, want 2 (the accepted one, then the retry)", len(txs), txs)
	}
}

// TestTooManyRecipientsSplit: a hop taking 100 recipients per transaction
// answers 452 4.5.3 to the rest (RFC 5321 §4.5.3.1.10); Ferry must deliver
// those in another transaction, and every recipient gets the message once.
// The hop (internal/smtpd, as in Ferry's own listener) must not hang up on
// a pipelining client for its 452s: they answer recipients the server
// chose not to take, not client errors (Postfix only counts them past
// smtpd_recipient_overshoot_limit, 1000).
func TestTooManyRecipientsSplit(t *testing.T) {
	t.Parallel()
	const n = 150
	h := startSink(t, "127.0.0.1:0", "--max-recipients", "100")
	r := startRelay(t, shortRetry, "", routeAll(h.Addr))
	var rcpts []string
	for i := 0; i < n; i++ {
		rcpts = append(rcpts, fmt.Sprintf("u%03d@example.com", i))
	}
	id := testrelay.SendOne(t, r.Addr, sender, rcpts, testrelay.ReadTestdata(t, "pure-ascii.eml"))
	r.WaitLog(t, "msg=removed", "id="+id)
	got := map[string]int{}
	caps := h.captures(t)
	for _, cp := range caps {
		if len(cp.sc.Rcpts) > 100 {
			t.Errorf("transaction %s has %d recipients, over the hop's 100", cp.sc.ID, len(cp.sc.Rcpts))
		}
		for _, rc := range cp.sc.Rcpts {
			got[rc.To]++
		}
	}
	var missing, twice []string
	for _, rc := range rcpts {
		switch got["<"+rc+">"] {
		case 0:
			missing = append(missing, rc)
		case 1:
		default:
			twice = append(twice, rc)
		}
	}
	t.Logf("%d recipients in %d transactions", n, len(caps))
	if len(missing) > 0 || len(twice) > 0 {
		t.Errorf("missing %d %v, more than once %d %v", len(missing), missing, len(twice), twice)
	}
	if b := r.LogLines(id, "status=bounced"); len(b) > 0 {
		t.Errorf("%d recipients bounced, e.g. %s", len(b), b[0])
	}
	if l := h.LogLines("reject", "too many errors"); len(l) > 0 {
		t.Errorf("the hop hung up on Ferry with 421 after its own 452 replies (smtpd MaxErrors counts 452 4.5.3): %s", l[0])
	}
	if len(caps) > 3 {
		t.Errorf("%d recipients took %d transactions; want the 452-deferred ones retried together", n, len(caps))
	}
}

// TestDeferredRecipientsStayTogether: when a whole transaction is deferred
// (the hop greets with 421), the retry carries all its recipients in one
// transaction, not one copy of the message per recipient.
func TestDeferredRecipientsStayTogether(t *testing.T) {
	t.Parallel()
	const n = 30
	h := startSink(t, "127.0.0.1:0", "--reply", "CONNECT:1=421 4.7.0 busy")
	r := startRelay(t, shortRetry, "", routeAll(h.Addr))
	var rcpts []string
	for i := 0; i < n; i++ {
		rcpts = append(rcpts, fmt.Sprintf("u%02d@example.com", i))
	}
	id := testrelay.SendOne(t, r.Addr, sender, rcpts, testrelay.ReadTestdata(t, "pure-ascii.eml"))
	r.WaitLog(t, "msg=removed", "id="+id)
	caps := h.captures(t)
	total := 0
	for _, cp := range caps {
		total += len(cp.sc.Rcpts)
	}
	if total != n {
		t.Errorf("%d recipients delivered, want %d", total, n)
	}
	t.Logf("%d recipients, deferred together, retried in %d transactions", n, len(caps))
	if len(caps) > 2 {
		t.Errorf("the retry of one deferred transaction with %d recipients took %d transactions", n, len(caps))
	}
}

// TestMaxMessagesPerConnection: with delivery.max_messages_per_connection
// = 3, no connection to the hop carries more than three messages.
func TestMaxMessagesPerConnection(t *testing.T) {
	t.Parallel()
	const n = 20
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, `
[delivery]
max_messages_per_connection = 3
`, "", routeAll(h.Addr))
	base := testrelay.ReadTestdata(t, "pure-ascii.eml")
	c := testrelay.Dial(t, r.Addr)
	for i := 0; i < n; i++ {
		c.SendID(sender, []string{"user@example.com"}, "", numbered(base, i))
	}
	c.Quit()
	h.waitCaptures(t, n)
	// The sink logs "queued session=S id=ID" per message, just after it
	// saves the capture; S names the connection.
	testrelay.WaitFor(t, fmt.Sprintf("%d queued lines in the sink's log", n), func() bool {
		return len(h.LogLines("msg=queued")) >= n
	})
	perSession := map[string]int{}
	re := regexp.MustCompile(`msg=queued session=(\S+) `)
	for _, l := range h.LogLines("msg=queued") {
		if m := re.FindStringSubmatch(l); m != nil {
			perSession[m[1]]++
		}
	}
	var counts []int
	total := 0
	for _, k := range perSession {
		counts = append(counts, k)
		total += k
	}
	sort.Ints(counts)
	t.Logf("messages per connection: %v", counts)
	if total != n {
		t.Fatalf("sink logged %d queued messages, want %d", total, n)
	}
	if counts[len(counts)-1] > 3 {
		t.Errorf("a connection carried %d messages, over max_messages_per_connection = 3", counts[len(counts)-1])
	}
}

// TestGracefulRestart: SIGTERM stops ferry serve cleanly (exit status 0)
// with messages still queued for a hop that is down; after a restart on
// the same spool they are all delivered, exactly once.
func TestGracefulRestart(t *testing.T) {
	t.Parallel()
	const n = 10
	addr := freePort(t)
	r1 := startRelay(t, shortRetry, "", routeAll(addr))
	base := testrelay.ReadTestdata(t, "pure-ascii.eml")
	c := testrelay.Dial(t, r1.Addr)
	for i := 0; i < n; i++ {
		c.SendID(sender, []string{"user@example.com"}, "", numbered(base, i))
	}
	c.Quit()
	r1.WaitLog(t, "status=deferred")
	start := time.Now()
	r1.Kill(t, syscall.SIGTERM)
	if !r1.Cmd.ProcessState.Success() {
		t.Errorf("ferry serve after SIGTERM: %v, want exit status 0", r1.Cmd.ProcessState)
	}
	t.Logf("SIGTERM to exit: %v", time.Since(start).Round(time.Millisecond))

	h := startSink(t, addr)
	r2 := startRelay(t, shortRetry, r1.spool, routeAll(addr))
	r2.WaitLog(t, "queue recovered", fmt.Sprintf(" messages=%d ", n))
	testrelay.WaitFor(t, fmt.Sprintf("%d messages removed after the restart", n), func() bool {
		return len(r2.LogLines("msg=removed")) >= n
	})
	seqs := map[string]int{}
	for _, cp := range h.captures(t) {
		seqs[seqOf(cp.data)]++
	}
	for i := 0; i < n; i++ {
		if k := seqs[fmt.Sprint(i)]; k != 1 {
			t.Errorf("message %d arrived %d times, want 1", i, k)
		}
	}
}

// TestInboundRecipientOvershoot: a pipelining client (RFC 2920) sends 150
// RCPT commands to Ferry's listener, whose max_recipients is 100, before
// reading any reply. RFC 5321 §4.5.3.1.10: the server answers 452 to the
// recipients beyond its limit and the client sends those later; the 100
// accepted recipients must still get the message. A server that counts
// these 452s as client errors and hangs up with 421 loses the whole
// transaction, and the client's retry meets the same fate.
func TestInboundRecipientOvershoot(t *testing.T) {
	t.Parallel()
	const n = 150
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, `
[[listener]]
address = "127.0.0.1:2525"
max_recipients = 100
`, "", routeAll(h.Addr))
	c := testrelay.Dial(t, r.Addr)
	var b strings.Builder
	fmt.Fprintf(&b, "MAIL FROM:<%s>\r\n", sender)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "RCPT TO:<u%03d@example.com>\r\n", i)
	}
	b.WriteString("DATA\r\n")
	c.Write([]byte(b.String()))
	c.Expect(250, c.Read())
	accepted, over := 0, 0
	for i := 0; i < n; i++ {
		rep := c.Read()
		switch {
		case rep.Code == 250:
			accepted++
		case rep.Code == 452:
			over++
		default:
			t.Fatalf("reply to RCPT %d: %v (after %d accepted, %d told 452)", i+1, rep, accepted, over)
		}
	}
	if accepted != 100 || over != n-100 {
		t.Errorf("%d recipients accepted and %d told 452, want 100 and %d", accepted, over, n-100)
	}
	c.Expect(354, c.Read())
	c.Write(testrelay.DotStuff(testrelay.ReadTestdata(t, "pure-ascii.eml")))
	c.Expect(250, c.Read())
	c.Quit()
	cp := h.waitCaptures(t, 1)
	if got := len(cp[0].sc.Rcpts); got != 100 {
		t.Errorf("hop got %d recipients, want 100", got)
	}
}
