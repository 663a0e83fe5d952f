package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// smuggledCommands is what an attacker hides after a fake end of data: a
// whole second transaction. The final ".\r\n" after "smuggled\r\n" is the
// real end of DATA at Ferry.
const smuggledCommands = "MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nsmuggled\r\n"

// smugglingCase is one fake end-of-data sequence put between "first line"
// and smuggledCommands.
type smugglingCase struct {
	name  string
	seq   string
	split bool // send the sequence one octet per TCP write
}

// smugglingCases lists every published SMTP smuggling sequence (SEC
// Consult, December 2023; the Postfix, Sendmail and Exim advisories that
// followed): a "." between any two line ends of which at least one is not
// CRLF, each also with a NUL or a space before or after the dot, and each
// once more with its octets spread over separate TCP writes so that a
// reader deciding at a read boundary is caught too.
func smugglingCases() []smugglingCase {
	ends := []struct{ name, before, after string }{
		{"LF.LF", "\n", "\n"},
		{"LF.CRLF", "\n", "\r\n"},
		{"CR.CR", "\r", "\r"},
		{"CR.LF", "\r", "\n"},
		{"CRLF.LF", "\r\n", "\n"},
		{"LF.CR", "\n", "\r"},
		{"CR.CRLF", "\r", "\r\n"},
		{"CRLF.CR", "\r\n", "\r"},
	}
	dots := []struct{ name, dot string }{
		{"", "."},
		{" NUL before dot", "\x00."},
		{" NUL after dot", ".\x00"},
		{" SP before dot", " ."},
		{" SP after dot", ". "},
	}
	var cases []smugglingCase
	for _, e := range ends {
		for _, d := range dots {
			cases = append(cases, smugglingCase{name: e.name + d.name, seq: e.before + d.dot + e.after})
		}
		cases = append(cases, smugglingCase{name: e.name + " split", seq: e.before + "." + e.after, split: true})
	}
	return cases
}

// TestSmugglingSequences sends every smuggling sequence through Ferry
// (client → ferry serve → ferry sink) inside a message whose body goes on
// with a complete second transaction. With bare_newline = "normalize" the
// hop must receive exactly one message per sequence, from the real sender,
// holding the smuggled commands as body text, every line ending in CRLF;
// with "reject" the client gets 550 5.5.2 and nothing is delivered. In
// neither mode may a message from evil@x exist anywhere. The hop itself
// rejects bare newlines, so one that slipped through would not be
// captured and the case would fail.
func TestSmugglingSequences(t *testing.T) {
	t.Parallel()
	cases := smugglingCases()
	modes := []struct {
		name   string
		config string
		reject bool
	}{
		{"normalize", "", false},
		{"reject", "[[listener]]\naddress = \"127.0.0.1:2525\"\nbare_newline = \"reject\"\n", true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h := startSink(t, "127.0.0.1:0", "--bare-newline", "reject")
			r := startRelay(t, m.config, "", routeAll(h.Addr))
			start := time.Now()
			ids := make([]string, len(cases))
			t.Run("send", func(t *testing.T) {
				for i, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						t.Parallel()
						ids[i] = sendSmuggling(t, r.Addr, i, tc, m.reject)
					})
				}
			})
			if t.Failed() {
				return
			}
			want := 0
			if !m.reject {
				want = len(cases)
				for _, id := range ids {
					r.WaitLog(t, "msg=removed", "id="+id)
				}
			}
			caps := settledCaptures(t, r, h, want)
			perCase := map[string][]capture{}
			for _, cp := range caps {
				if strings.Contains(cp.sc.From, "evil") || bytes.HasPrefix(cp.data, []byte("smuggled")) {
					t.Errorf("smuggled message reached the hop: from %s to %v: %q", cp.sc.From, cp.sc.Rcpts, testrelay.Clip(cp.data))
					continue
				}
				if cp.sc.From != "<"+sender+">" || len(cp.sc.Rcpts) != 1 {
					t.Errorf("unexpected message at the hop: from %s to %v", cp.sc.From, cp.sc.Rcpts)
					continue
				}
				perCase[cp.sc.Rcpts[0].To] = append(perCase[cp.sc.Rcpts[0].To], cp)
			}
			if m.reject {
				if len(caps) != 0 {
					t.Errorf("with bare_newline = reject the hop holds %d messages, want none", len(caps))
				}
				return
			}
			for i, tc := range cases {
				got := perCase["<"+caseRcpt(i)+">"]
				if len(got) != 1 {
					t.Errorf("%s: %d messages at the hop, want exactly one", tc.name, len(got))
					continue
				}
				checkSmuggledBody(t, tc, got[0].data)
			}
			t.Logf("%d sequences, %s: %v", len(cases), m.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// caseRcpt is the recipient of case i, so each message at the hop is known.
func caseRcpt(i int) string { return fmt.Sprintf("case%02d@example.com", i) }

// sendSmuggling sends case i's message raw (no dot-stuffing: the attacker
// chooses every octet) and checks Ferry's replies: one reply to the content
// (250, or 550 5.5.2 when rejecting), then nothing but the 221 to QUIT, so
// Ferry itself saw exactly one end of data. It returns the queue ID.
func sendSmuggling(t *testing.T, addr string, i int, tc smugglingCase, reject bool) string {
	t.Helper()
	c := testrelay.Dial(t, addr)
	c.Expect(250, c.Cmd("MAIL FROM:<%s>", sender))
	c.Expect(250, c.Cmd("RCPT TO:<%s>", caseRcpt(i)))
	c.Expect(354, c.Cmd("DATA"))
	head := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: smuggling %s\r\n\r\nfirst line", sender, caseRcpt(i), tc.name)
	tail := smuggledCommands + ".\r\n"
	if tc.split {
		c.Write([]byte(head))
		for j := 0; j < len(tc.seq); j++ {
			time.Sleep(5 * time.Millisecond) // let each octet arrive alone
			c.Write([]byte{tc.seq[j]})
		}
		time.Sleep(5 * time.Millisecond)
		c.Write([]byte(tail))
	} else {
		c.Write([]byte(head + tc.seq + tail))
	}
	rep := c.Read()
	id := ""
	if reject {
		if rep.Code != 550 || !strings.HasPrefix(rep.Text(), "5.5.2") {
			t.Errorf("content with %q under bare_newline = reject: %v, want 550 5.5.2", tc.seq, rep)
		}
	} else {
		c.Expect(250, rep)
		_, after, ok := strings.Cut(rep.Text(), "queued as ")
		if !ok || len(strings.Fields(after)) == 0 {
			t.Fatalf("250 without a queue ID: %v", rep)
		}
		id = strings.Fields(after)[0]
	}
	// Had Ferry taken the sequence for the end of data, the smuggled
	// commands would have their own replies queued ahead of QUIT's.
	if rep := c.Cmd("QUIT"); rep.Code != 221 {
		t.Errorf("after the content Ferry answered %v, want only the 221 to QUIT", rep)
	}
	return id
}

// checkSmuggledBody checks one captured message: canonical line ends, the
// smuggled commands present as body text after the first line, and the
// message ending right after them.
func checkSmuggledBody(t *testing.T, tc smugglingCase, data []byte) {
	t.Helper()
	for i := 0; i < len(data); i++ {
		if data[i] == '\r' && (i+1 == len(data) || data[i+1] != '\n') || data[i] == '\n' && (i == 0 || data[i-1] != '\r') {
			t.Errorf("%s: bare newline at offset %d in what the hop received: %q", tc.name, i, clipAround(data, i))
			return
		}
	}
	_, body, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	if !ok {
		t.Errorf("%s: no header/body separator: %q", tc.name, testrelay.Clip(data))
		return
	}
	if !bytes.HasPrefix(body, []byte("first line")) || !bytes.HasSuffix(body, []byte("\r\n"+smuggledCommands)) {
		t.Errorf("%s: body %q does not hold the first line and then the smuggled commands as text", tc.name, body)
	}
}

// clipAround returns up to 40 octets either side of offset i.
func clipAround(b []byte, i int) []byte {
	lo, hi := max(0, i-40), min(len(b), i+40)
	return b[lo:hi]
}

// settledCaptures waits until the hop holds want captures and every
// message r ever queued (a smuggled one included: the sessions are over,
// so each has its "queued" line) has left the queue, then returns the
// hop's captures.
func settledCaptures(t *testing.T, r *relay, h *hop, want int) []capture {
	t.Helper()
	if want > 0 {
		h.waitCaptures(t, want)
	}
	for _, l := range r.LogLines("msg=queued") {
		_, id, _ := strings.Cut(l, " id=")
		id, _, _ = strings.Cut(id, " ")
		r.WaitLog(t, "msg=removed", "id="+id)
	}
	return h.captures(t)
}

// TestEndOfDataSplitAcrossWrites: a real <CRLF>.<CRLF> whose last LF
// arrives in a later TCP write than the CR still ends the message there,
// and nothing after it is taken as content.
func TestEndOfDataSplitAcrossWrites(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--bare-newline", "reject")
	r := startRelay(t, "", "", routeAll(h.Addr))
	c := testrelay.Dial(t, r.Addr)
	c.Expect(250, c.Cmd("MAIL FROM:<%s>", sender))
	c.Expect(250, c.Cmd("RCPT TO:<split@example.com>"))
	c.Expect(354, c.Cmd("DATA"))
	c.Write([]byte("Subject: split end\r\n\r\nfirst line\r\n.\r"))
	// A negative check: a wrong early reply shows within the window; a
	// slow machine can only make the check miss, never fail it.
	c.Conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.R.Peek(1); err == nil {
		t.Fatalf("Ferry replied %q before the LF of the end of data arrived", n)
	}
	c.Write([]byte("\n"))
	rep := c.Expect(250, c.Read())
	c.Quit()
	cp := h.waitCaptures(t, 1)[0]
	_, id, _ := strings.Cut(rep.Text(), "queued as ")
	rest := checkReceived(t, cp.data, strings.Fields(id)[0])
	if want := "Subject: split end\r\n\r\nfirst line\r\n"; string(rest) != want {
		t.Errorf("hop received %q, want %q", rest, want)
	}
}
