package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestEveryKeywordCombination sends every test message to one strict 7-bit
// hop per combination of 8BITMIME, PIPELINING, CHUNKING and SIZE (plus one
// with BINARYMIME): where the hop offers 8BITMIME the message arrives
// byte-identical (apart from Received:; a line over 998 octets is the
// exception, converted), elsewhere as clean 7-bit whose leaves decode to
// the original. BODY= and SIZE= appear only where the hop offered them.
func TestEveryKeywordCombination(t *testing.T) {
	t.Parallel()
	base := []string{"8BITMIME", "PIPELINING", "CHUNKING", "SIZE"}
	var combos [][]string
	for mask := 0; mask < 1<<len(base); mask++ {
		var kw []string
		for i, k := range base {
			if mask&(1<<i) != 0 {
				kw = append(kw, k)
			}
		}
		combos = append(combos, kw)
	}
	combos = append(combos, []string{"8BITMIME", "CHUNKING", "BINARYMIME", "PIPELINING", "ENHANCEDSTATUSCODES"})

	hops := make([]*hop, len(combos))
	var routes []string
	for i, kw := range combos {
		offer := strings.Join(kw, ",")
		if offer == "" {
			offer = "none"
		}
		hops[i] = startSink(t, "127.0.0.1:0", "--keywords", offer, "--strict-7bit")
		routes = append(routes, routeTo(fmt.Sprintf("kw%d.example", i), hops[i].Addr))
	}
	r := startRelay(t, "", "", routes...)
	names := testMessages(t)
	c := testrelay.Dial(t, r.Addr)
	for i := range combos {
		for _, name := range names {
			content := testrelay.ReadTestdata(t, name)
			c.SendID(sender, []string{fmt.Sprintf("user@kw%d.example", i)}, testrelay.BodyParam(content), content)
		}
	}
	c.Quit()

	for i, kw := range combos {
		h := hops[i]
		label := "[" + strings.Join(kw, ",") + "]"
		testrelay.WaitFor(t, fmt.Sprintf("%d messages at hop %s", len(names), label), func() bool {
			return h.count(t) >= len(names) || len(r.LogLines(fmt.Sprintf("kw%d.example", i), "status=bounced")) > 0
		})
		for _, l := range r.LogLines(fmt.Sprintf("kw%d.example", i), "status=bounced") {
			t.Errorf("hop %s: bounced: %s", label, l)
		}
		has := map[string]bool{}
		for _, k := range kw {
			has[k] = true
		}
		byMsgID := map[string]string{}
		for _, name := range names {
			byMsgID[messageID(t, testrelay.ReadTestdata(t, name))] = name
		}
		caps := h.captures(t)
		if len(caps) != len(names) {
			t.Errorf("hop %s holds %d messages, want %d", label, len(caps), len(names))
		}
		chunked := 0
		for _, cp := range caps {
			_, rest := testrelay.StripFirstField(cp.data)
			name, ok := byMsgID[messageID(t, rest)]
			if !ok {
				t.Errorf("hop %s: capture %s has an unknown Message-ID", label, cp.sc.ID)
				continue
			}
			orig := testrelay.ReadTestdata(t, name)
			what := label + " " + name
			mail := strings.ToUpper(cp.sc.MailLine)
			if strings.Contains(mail, " SIZE=") != has["SIZE"] {
				t.Errorf("%s: MAIL line %q: SIZE= must be sent exactly when offered", what, cp.sc.MailLine)
			}
			if cp.sc.Chunked {
				chunked++
				if !has["CHUNKING"] {
					t.Errorf("%s: BDAT to a hop without CHUNKING", what)
				}
			}
			switch {
			case has["8BITMIME"] && name != "long-line-latin1.eml":
				if !bytes.Equal(rest, orig) {
					t.Errorf("%s: arrived changed at offset %d", what, testrelay.FirstDiff(rest, orig))
				}
				if eight := testrelay.BodyParam(orig) != ""; strings.Contains(mail, "BODY=8BITMIME") != eight {
					t.Errorf("%s: MAIL line %q for an 8-bit body: %v", what, cp.sc.MailLine, eight)
				}
			case has["8BITMIME"]:
				for j, l := range bytes.Split(rest, []byte("\r\n")) {
					if len(l) > 998 {
						t.Errorf("%s: line %d has %d octets", what, j+1, len(l))
					}
				}
				if d := testrelay.DiffDecoded(orig, rest); len(d) > 0 {
					t.Errorf("%s: does not decode to the original:\n  %s", what, strings.Join(d, "\n  "))
				}
			default:
				checkSevenBit(t, what, orig, cp)
			}
		}
		for _, l := range h.LogLines("stage=PIPELINING") {
			t.Errorf("hop %s saw commands sent ahead (RFC 2920 §3.1): %s", label, l)
		}
		t.Logf("hop %s: %d messages, %d with BDAT", label, len(caps), chunked)
	}
}
