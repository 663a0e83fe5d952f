package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/dkim/dkimtest"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// corpusKinds are the message shapes of the DKIM corpus.
var corpusKinds = []string{"8bit-text", "8bit-alternative", "binary-attachment", "long-lines", "8bit-long-lines", "7bit-clean", "8bit-rfc822", "8bit-non-mime"}

// corpusMessage builds message i of the corpus: its kind cycles through
// corpusKinds, its text and sizes come from a seeded generator, so every
// run relays the same corpus.
func corpusMessage(i int) (kind string, msg []byte) {
	rng := rand.New(rand.NewPCG(14, uint64(i)))
	kind = corpusKinds[i%len(corpusKinds)]
	words8 := []string{"Grüße", "déjà", "naïve", "Ærø", "smørrebrød", "señor", "Zürich", "çà", "früh", "€uro"}
	words7 := []string{"relay", "message", "signature", "hop", "queue", "domain", "header", "body", "plain", "text"}
	text := func(words []string, lines, width int) string {
		var b strings.Builder
		for range lines {
			n := 0
			for n < width {
				w := words[rng.IntN(len(words))]
				b.WriteString(w + " ")
				n += len(w) + 1
			}
			b.WriteString("\r\n")
		}
		return b.String()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Alice <alice@example.org>\r\nTo: <user@example.com>\r\nSubject: corpus %d %s\r\nDate: Thu, 3 Dec 2026 09:00:00 +0000\r\nMessage-ID: <corpus-%d@example.org>\r\nX-Test: corpus-%d\r\n", i, kind, i, i)
	lines := 3 + rng.IntN(60)
	switch kind {
	case "8bit-text":
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text(words8, lines, 70))
	case "8bit-alternative":
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n")
		b.WriteString("--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text(words8, lines, 70))
		b.WriteString("--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>" + text(words8, lines, 70) + "</p>\r\n--alt--\r\n")
	case "binary-attachment":
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n")
		b.WriteString("--mix\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text(words8, 2, 60))
		b.WriteString("--mix\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n")
		for j := range 200 + rng.IntN(4000) {
			b.WriteByte(byte(rng.IntN(256)))
			if j%80 == 79 {
				b.WriteString("\r\n") // CRLF line ends: no bare CR or LF
			}
		}
		b.WriteString("\r\n--mix--\r\n")
	case "long-lines":
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + text(words7, 2, 1200+rng.IntN(3000)) + text(words7, lines, 70))
	case "8bit-long-lines":
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text(words8, 1, 1500) + text(words8, lines, 70))
	case "7bit-clean":
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + text(words7, lines, 70))
	case "8bit-rfc822":
		b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nForwarded below.\r\n")
		b.WriteString("--outer\r\nContent-Type: message/rfc822\r\n\r\nFrom: <bob@example.net>\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text(words8, lines, 70) + "--outer--\r\n")
	case "8bit-non-mime":
		b.WriteString("\r\n" + text(words8, lines, 70))
	}
	return kind, b.Bytes()
}

// TestDKIMCorpusFigure relays a corpus of 120 generated messages (8-bit,
// binary, multipart, long lines, a few 7-bit clean ones), each signed
// upstream by dkimpy before Ferry sees it (what a signer before the relay
// delivers, e.g. Postfix with OpenDKIM), through the built binary to a hop
// without 8BITMIME, where Ferry converts and then signs. dkimpy judges,
// in one run, both signatures of every message at the next hop; the test
// prints the two shares (run with -v to see them):
//
//	go test ./internal/e2e -run TestDKIMCorpusFigure -v
//
// Ferry's own signature must verify on every message; the shares of the
// signature made before conversion are the figure.
func TestDKIMCorpusFigure(t *testing.T) {
	t.Parallel()
	const n = 120
	w := newDKIMWorld(t)
	seven := sevenBitHop(t)
	r := startRelay(t, w.allTo(seven.Addr, "convert"), "")
	kinds := make([]string, n)
	msgs := make([][]byte, n)
	for i := range n {
		kinds[i], msgs[i] = corpusMessage(i)
	}
	signed := dkimtest.SignAll(t, msgs, "up", "example.org", w.upKey)
	c := testrelay.Dial(t, r.Addr)
	for i, m := range signed {
		if kinds[i] == "binary-attachment" {
			sendBDAT(t, r.Addr, sender, "user@example.com", m)
			continue
		}
		c.SendID(sender, []string{"user@example.com"}, testrelay.BodyParam(m), m)
	}
	c.Quit()
	caps := seven.waitCaptures(t, n)
	got := w.judge(t, caps)
	type share struct{ ferry, before, total int }
	var conv, clean share
	perKind := map[string]*share{}
	for i := range n {
		j, ok := got[fmt.Sprintf("corpus-%d", i)]
		if !ok {
			t.Errorf("message %d (%s) did not arrive", i, kinds[i])
			continue
		}
		if p := testrelay.Problems7Bit(j.data); len(p) > 0 {
			t.Errorf("message %d (%s) is not 7-bit: %v", i, kinds[i], p)
		}
		f, up := j.sigs("ferry"), j.sigs("up")
		ferryOK := len(f) == 1 && f[0].OK
		upOK := len(up) == 1 && up[0].OK
		if !ferryOK {
			t.Errorf("message %d (%s): Ferry's signature does not verify: %+v", i, kinds[i], j.verdict.DKIM)
		}
		s := &conv
		if kinds[i] == "7bit-clean" {
			s = &clean
		}
		if perKind[kinds[i]] == nil {
			perKind[kinds[i]] = &share{}
		}
		for _, x := range []*share{s, perKind[kinds[i]]} {
			x.total++
			if ferryOK {
				x.ferry++
			}
			if upOK {
				x.before++
			}
		}
	}
	pct := func(a, b int) float64 { return 100 * float64(a) / float64(max(b, 1)) }
	all := share{ferry: conv.ferry + clean.ferry, before: conv.before + clean.before, total: conv.total + clean.total}
	t.Logf("FIGURE dkim corpus: %d messages relayed to a hop without 8BITMIME, judged by dkimpy", all.total)
	t.Logf("FIGURE signed after conversion (Ferry):  %d/%d verify (%.1f%%)", all.ferry, all.total, pct(all.ferry, all.total))
	t.Logf("FIGURE signed before conversion:         %d/%d verify (%.1f%%)", all.before, all.total, pct(all.before, all.total))
	t.Logf("FIGURE   of them converted:  after %d/%d (%.1f%%), before %d/%d (%.1f%%)", conv.ferry, conv.total, pct(conv.ferry, conv.total), conv.before, conv.total, pct(conv.before, conv.total))
	t.Logf("FIGURE   of them 7-bit clean: after %d/%d (%.1f%%), before %d/%d (%.1f%%)", clean.ferry, clean.total, pct(clean.ferry, clean.total), clean.before, clean.total, pct(clean.before, clean.total))
	for _, k := range corpusKinds {
		if s := perKind[k]; s != nil {
			t.Logf("FIGURE   %-18s after %3d/%-3d before %3d/%-3d", k, s.ferry, s.total, s.before, s.total)
		}
	}
	if clean.before != clean.total {
		t.Errorf("an unconverted message lost its upstream signature: %d/%d", clean.before, clean.total)
	}
}
