package deliver

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/sink"
)

// quarterEightBitMsg is mostly-ASCII 8-bit text with one octet in four
// above 127: the converter writes it quoted-printable, about half as large
// again, more than base64's 4/3 (the old SIZE= estimate fell short of it).
var quarterEightBitMsg = "From: a@origin.example\r\nTo: x@hop.test\r\nSubject: test\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
	strings.Repeat(strings.Repeat("abc\xe9", 18)+"\r\n", 200)

// convertedSize is the size of msg after the real converter.
func convertedSize(t *testing.T, msg string) int64 {
	t.Helper()
	var out bytes.Buffer
	if _, err := downgrade.Convert(&out, strings.NewReader(msg), downgrade.Options{}); err != nil {
		t.Fatal(err)
	}
	return int64(out.Len())
}

// sizeParam returns the SIZE= value of a MAIL command line, -1 for none.
func sizeParam(mail string) int64 {
	for _, f := range strings.Fields(mail) {
		if v, ok := strings.CutPrefix(strings.ToUpper(f), "SIZE="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// enforceSize makes a fake hop refuse MAIL with a SIZE= over limit, as
// RFC 1870 §6.1 lets a hop do.
func enforceSize(h *fakeHop, limit int64) {
	h.script = func(verb, arg string, _, _ int) string {
		if verb == "MAIL" && sizeParam(arg) > limit {
			return "552 5.3.4 Message size exceeds fixed limit"
		}
		return ""
	}
}

// TestSizeOverLimitAfterConversion: a message whose stored size fits the
// hop's SIZE limit but which conversion (or signing) makes larger fails at
// once with 552 5.3.4, decided by Ferry before MAIL FROM: the hop gets no
// MAIL for it, the reply and the plan say what made it too large, and no
// Remote-MTA is recorded (the hop did not say it). The connection serves
// the next message.
func TestSizeOverLimitAfterConversion(t *testing.T) {
	stored := int64(len(quarterEightBitMsg))
	converted := convertedSize(t, quarterEightBitMsg)
	k := testKey(t, nil, "origin.example", "s1", dkim.Ed25519SHA256)
	signer := &KeySigner{Keys: dkim.NewKeys(mustKeyring(t, k)), AuthServID: "ferry.test"}
	for _, c := range []struct {
		name     string
		body     string
		keywords []string
		limit    int64
		signer   Signer
		grown    string
		before   int64
	}{
		// Between the stored and the converted size.
		{"conversion", quarterEightBitMsg, []string{"PIPELINING"}, (stored + converted) / 2, nil, "conversion", stored},
		// Exactly the stored size: plainMsg goes unconverted to an
		// 8BITMIME hop, and the signature field alone is too much.
		{"signing", plainMsg, []string{"PIPELINING", "8BITMIME"}, int64(len(plainMsg)), signer, "signing", int64(len(plainMsg))},
	} {
		t.Run(c.name, func(t *testing.T) {
			hop := newFakeHop(t, append(c.keywords, "SIZE "+strconv.FormatInt(c.limit, 10))...)
			enforceSize(hop, c.limit)
			hop.start()
			q := newMemQueue()
			a, logs := testAgent(t, q, hop.route(), func(cfg *Config) {
				cfg.Converter = Downgrader{}
				if c.signer != nil {
					cfg.Signer = c.signer
				}
			})
			a.DeliverLease(context.Background(), lease(testMessage("BIG", c.body, "x@hop.test"), testMessage("SMALL", "From: a@b.example\r\n\r\nx\r\n", "y@hop.test")))
			r := q.last(t, "BIG", 0)
			if r.State != queue.Failed || r.Reply.Code != 552 || r.Reply.Enhanced != "5.3.4" {
				t.Fatalf("BIG: %s %q; want failed 552 5.3.4", statusWord(r.State), r.Reply.String())
			}
			text := r.Reply.String()
			wantText := fmt.Sprintf("after %s (%d before), the next hop's limit is %d", c.grown, c.before, c.limit)
			if !strings.Contains(text, "Message size exceeds fixed maximum message size") || !strings.Contains(text, wantText) {
				t.Errorf("reply %q; want it to contain %q", text, wantText)
			}
			if r.RemoteMTA != "" {
				t.Errorf("RemoteMTA = %q: the refusal is Ferry's own", r.RemoteMTA)
			}
			q.expect(t, "SMALL", 0, queue.Sent, "250")
			// SMALL needed one MAIL: BIG had none.
			_, _, cmds, conns := hop.snapshot()
			if mails := mailCommands(cmds); len(mails) != 1 || conns != 1 {
				t.Errorf("MAIL commands %q over %d connection(s); want one, for SMALL, on one", mails, conns)
			}
			line := fmt.Sprintf("after %s exceeds the next hop's SIZE %d), status=bounced (552 5.3.4", c.grown, c.limit)
			if !strings.Contains(logs.String(), line) {
				t.Errorf("log lacks %q:\n%s", line, logs)
			}
		})
	}
}

// TestSizeDeclared: what SIZE= declares is exactly the size of the content
// the hop receives (RFC 1870 §4: CRLFs counted, dot-stuffing not), so an
// upper bound of it, also after conversion and with the signature fields
// added; a hop with "SIZE 0" has no limit and still gets SIZE=, a hop
// without SIZE gets none.
func TestSizeDeclared(t *testing.T) {
	k := testKey(t, nil, "origin.example", "s1", dkim.Ed25519SHA256)
	signer := &KeySigner{Keys: dkim.NewKeys(mustKeyring(t, k)), AuthServID: "ferry.test"}
	converted := convertedSize(t, quarterEightBitMsg)
	for _, c := range []struct {
		name     string
		body     string
		keywords []string
		signer   Signer
		noSize   bool
	}{
		{"stored", plainMsg, []string{"PIPELINING", "SIZE 100000"}, nil, false},
		{"converted, limit just fits", quarterEightBitMsg, []string{"PIPELINING", "SIZE " + strconv.FormatInt(converted, 10)}, nil, false},
		{"converted and signed", quarterEightBitMsg, []string{"PIPELINING", "SIZE 100000"}, signer, false},
		{"signed, not converted", eightBitMsg, []string{"PIPELINING", "8BITMIME", "SIZE 100000"}, signer, false},
		{"converted, SIZE 0", quarterEightBitMsg, []string{"PIPELINING", "SIZE 0"}, nil, false},
		{"converted, bare SIZE", quarterEightBitMsg, []string{"PIPELINING", "SIZE"}, nil, false},
		{"converted, no SIZE keyword", quarterEightBitMsg, []string{"PIPELINING"}, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, rt := startSink(t, sink.Options{Keywords: c.keywords})
			q := newMemQueue()
			a, logs := testAgent(t, q, rt, func(cfg *Config) {
				cfg.Converter = Downgrader{}
				if c.signer != nil {
					cfg.Signer = c.signer
				}
			})
			a.DeliverLease(context.Background(), lease(testMessage("SZ", c.body, "x@hop.test")))
			q.expect(t, "SZ", 0, queue.Sent, "250")
			msgs := s.Messages()
			if len(msgs) != 1 {
				t.Fatalf("the hop got %d messages", len(msgs))
			}
			m := msgs[0]
			declared := sizeParam(m.MailLine)
			switch {
			case c.noSize:
				if declared != -1 {
					t.Errorf("SIZE= sent to a hop without SIZE: %q", m.MailLine)
				}
				return
			case declared != int64(len(m.Data)):
				t.Errorf("SIZE=%d declared for %d octets received", declared, len(m.Data))
			}
			if want := fmt.Sprintf("size=%d), status=sent", len(m.Data)); !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		})
	}
}
