package downgrade

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"mime"
	"net/mail"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/downgrade/downgradetest"
)

// msgGen builds random well-formed messages whose leaves hold every kind
// of troublesome content under honest and lying labels.
type msgGen struct {
	rng *rand.Rand
	n   int
}

func (g *msgGen) content() []byte {
	kinds := []func() byte{
		func() byte { return "abc xyz.=\t-"[g.rng.IntN(11)] },
		func() byte { return byte(g.rng.IntN(256)) },
		func() byte { return "\r\n"[g.rng.IntN(2)] },
	}
	var b []byte
	for range g.rng.IntN(6) {
		switch g.rng.IntN(9) {
		case 0:
			b = append(b, "\xc3\xa9t\xc3\xa9 caf\xc3\xa9"...)
		case 1:
			b = append(b, ".\r\n"...)
		case 2:
			b = append(b, "From here\r\n"...)
		case 3:
			b = append(b, bytes.Repeat([]byte("long "), 250)...)
		case 4:
			b = append(b, "trailing  \r\n"...)
		case 5:
			b = append(b, "caf\xe9\r\n"...)
		default:
			k := kinds[g.rng.IntN(len(kinds))]
			for range g.rng.IntN(40) {
				b = append(b, k())
			}
			b = append(b, "\r\n"...)
		}
	}
	return b
}

func (g *msgGen) boundary() string {
	g.n++
	return fmt.Sprintf("b%d_%x", g.n, g.rng.Uint32())
}

// entity writes one entity (header fields, blank line, body).
func (g *msgGen) entity(b *bytes.Buffer, depth int) {
	switch r := g.rng.IntN(10); {
	case depth < 3 && r < 3:
		bd := g.boundary()
		fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n", bd)
		if g.rng.IntN(2) == 0 {
			b.WriteString("Content-Transfer-Encoding: 8bit\r\n")
		}
		b.WriteString("\r\npreamble\r\n")
		for range 1 + g.rng.IntN(3) {
			fmt.Fprintf(b, "--%s\r\n", bd)
			g.entity(b, depth+1)
			b.WriteString("\r\n")
		}
		fmt.Fprintf(b, "--%s--\r\nepilogue\r\n", bd)
	case depth < 3 && r < 4:
		b.WriteString("Content-Type: message/rfc822\r\n\r\n")
		if g.rng.IntN(3) == 0 {
			b.WriteString("From sender@example.org Mon Jan  1 10:00:00 2024\r\n") // mbox
		}
		g.message(b, depth+1)
	default:
		types := []string{"text/plain; charset=utf-8", "application/octet-stream", "text/html", ""}
		if t := types[g.rng.IntN(len(types))]; t != "" {
			fmt.Fprintf(b, "Content-Type: %s\r\n", t)
		}
		if g.rng.IntN(4) == 0 {
			names := []string{"r\xc3\xa9sum\xc3\xa9.pdf", "caf\xe9 cr\xe8me.txt", "plain.txt"}
			fmt.Fprintf(b, "Content-Disposition: attachment; filename=\"%s\"\r\n", names[g.rng.IntN(len(names))])
		}
		labels := []string{"", "7bit", "8bit", "binary", "8BIT (lies)", "7-bit", "plain"}
		if l := labels[g.rng.IntN(len(labels))]; l != "" {
			fmt.Fprintf(b, "Content-Transfer-Encoding: %s\r\n", l)
		}
		b.WriteString("\r\n")
		b.Write(g.content())
	}
}

func (g *msgGen) message(b *bytes.Buffer, depth int) {
	subjects := []string{"plain subject", "r\xc3\xa9union \xc3\xa0 10h", "caf\xe9 cr\xe8me", strings.Repeat("mot ", 30) + "fin\xc3\xa9"}
	froms := []string{"a@example.org", "J\xc3\xb6rg M\xc3\xbcller <j@example.org>", "\"Dupont, Zo\xc3\xa9\" <z@example.fr>", "x@example.org (B\xc3\xbcro)"}
	fmt.Fprintf(b, "From: %s\r\nSubject: %s\r\n", froms[g.rng.IntN(len(froms))], subjects[g.rng.IntN(len(subjects))])
	extra := []string{
		" \r\n", // obs-FWS: a continuation of white space only
		"Date: Mon, 1 Jan 2024 10:00:00 +0100 (Mitteleurop\xe4ische Zeit)\r\n",
		"List-Id: Liste fran\xc3\xa7aise <liste.example.org>\r\n",
		"Comments: =?utf-8?Q?caf=C3=A9?= cr\xc3\xa8me\r\n",
		"",
	}
	b.WriteString(extra[g.rng.IntN(len(extra))])
	if g.rng.IntN(4) > 0 {
		b.WriteString("MIME-Version: 1.0\r\n")
	}
	g.entity(b, depth)
}

// TestRoundTripProperty converts random messages and checks, with the
// standard library's decoders, that the output is 7-bit and that every
// leaf and the Subject and From fields decode to the original octets.
func TestRoundTripProperty(t *testing.T) { roundTripProperty(t, Options{}) }

// TestRoundTripProperty8BitMIME is TestRoundTripProperty for the 8BITMIME
// target: the output is fit for 8BITMIME (no NUL, CRLF only, lines of at
// most 998 octets) and decodes to the original octets.
func TestRoundTripProperty8BitMIME(t *testing.T) { roundTripProperty(t, Options{EightBit: true}) }

// TestRoundTripPropertySMTPUTF8 is TestRoundTripProperty8BitMIME for a
// message that goes with SMTPUTF8: header fields keep their 8-bit text.
func TestRoundTripPropertySMTPUTF8(t *testing.T) {
	roundTripProperty(t, Options{EightBit: true, UTF8Headers: true})
}

func roundTripProperty(t *testing.T, target Options) {
	eightBit := target.EightBit
	g := &msgGen{rng: rand.New(rand.NewPCG(5, 6))}
	compare := downgradetest.Compare
	if eightBit {
		compare = downgradetest.Compare8BitMIME
	}
	kept, encoded := 0, 0
	dec := &mime.WordDecoder{CharsetReader: rawCharset}
	const runs = 500
	compared := 0
	for i := range runs {
		var b bytes.Buffer
		g.message(&b, 0)
		in := b.Bytes()
		if i%3 == 0 && !bytes.Contains(in, []byte("\r")) {
			in = bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		}
		out, rep, cmp, err := checkRoundTripFor(t, in, target)
		if cmp {
			compared++
		}
		if err != nil {
			t.Fatalf("message %d: %v\n%q", i, err, in)
		}
		if rep != nil {
			kept += rep.Kept8Bit
			encoded += len(rep.Headers)
		}
		// The second parser: leaves and every header field.
		if err := compare(in, out); err != nil && !errors.Is(err, downgradetest.ErrUnreadable) {
			t.Fatalf("message %d: go-message: %v\nin:  %q\nout: %q", i, err, in, out)
		}
		// Header text: decode both with net/mail and mime.WordDecoder.
		mi, err1 := mail.ReadMessage(bytes.NewReader(normalize(in)))
		mo, err2 := mail.ReadMessage(bytes.NewReader(out))
		if err1 != nil || err2 != nil {
			t.Fatalf("message %d: net/mail: %v / %v", i, err1, err2)
		}
		subj, err := dec.DecodeHeader(mo.Header.Get("Subject"))
		// Trailing white space is not text (an obs-FWS line adds some).
		if err != nil || strings.TrimSpace(subj) != strings.TrimSpace(mi.Header.Get("Subject")) {
			t.Fatalf("message %d: Subject %q (%v), want %q", i, subj, err, mi.Header.Get("Subject"))
		}
		p := mail.AddressParser{WordDecoder: dec}
		ai, err1 := p.ParseList(mi.Header.Get("From"))
		ao, err2 := p.ParseList(mo.Header.Get("From"))
		if err1 != nil || err2 != nil || len(ai) != len(ao) || ai[0].Name != ao[0].Name || ai[0].Address != ao[0].Address {
			t.Fatalf("message %d: From %v (%v), want %v (%v)", i, ao, err2, ai, err1)
		}
	}
	if compared < runs*9/10 {
		t.Fatalf("leaves compared in only %d of %d messages", compared, runs)
	}
	if target.UTF8Headers != (encoded == 0) {
		t.Fatalf("%d header fields encoded (SMTPUTF8 headers kept: %v)", encoded, target.UTF8Headers)
	}
	if eightBit && kept < runs/10 {
		t.Fatalf("only %d 8-bit leaves kept in %d messages", kept, runs)
	} else if !eightBit && kept > 0 {
		t.Fatalf("the 7-bit target kept %d 8-bit leaves", kept)
	}
}
