package deliver

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// fakeConverter is a stand-in for internal/downgrade in these tests: it
// writes every octet > 127 as "=XX".
type fakeConverter struct{ pass8 bool }

func (f fakeConverter) Convert(dst io.Writer, src io.Reader, _ ConversionTarget) (ConversionReport, error) {
	b, err := io.ReadAll(src)
	if err != nil {
		return ConversionReport{}, err
	}
	if f.pass8 {
		_, err = dst.Write(b) // a broken converter
		return ConversionReport{}, err
	}
	var out bytes.Buffer
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		if c > 127 {
			out.Write([]byte{'=', hex[c>>4], hex[c&15]})
			continue
		}
		out.WriteByte(c)
	}
	_, err = dst.Write(out.Bytes())
	return ConversionReport{Changed: true, Summary: "fake"}, err
}

// TestEightBitToSevenBitHop is the Domino case: whatever happens, no octet
// > 127 reaches a hop without 8BITMIME.
func TestEightBitToSevenBitHop(t *testing.T) {
	tests := []struct {
		name  string
		conv  Converter
		pol   route.Policy
		state queue.RcptState
		reply string
	}{
		{"converted", fakeConverter{}, route.Policy{}, queue.Sent, "250"},
		{"no converter", nil, route.Policy{}, queue.Failed, "554 5.6.3 Conversion required but not supported"},
		{"route says bounce", fakeConverter{}, route.Policy{EightBit: route.Bounce}, queue.Failed, "554 5.6.3"},
		{"broken converter caught", fakeConverter{pass8: true}, route.Policy{}, queue.Failed, "554 5.6.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hop := newFakeHop(t, "SIZE 10240000", "PIPELINING", "HELP").start()
			q := newMemQueue()
			rt := hop.route()
			rt.Policy = tt.pol
			a, logs := testAgent(t, q, rt, func(c *Config) { c.Converter = tt.conv })
			a.DeliverLease(context.Background(), lease(testMessage("8B", eightBitMsg, "x@hop.test")))
			q.expect(t, "8B", 0, tt.state, tt.reply)
			// Ferry's own decision (before MAIL) is not the hop's word: no
			// Remote-MTA for the report (RFC 3464 §2.3.5).
			own := tt.name == "no converter" || tt.name == "route says bounce"
			if r := q.last(t, "8B", 0); own != (r.RemoteMTA == "") {
				t.Errorf("RemoteMTA = %q for %s", r.RemoteMTA, tt.name)
			}
			raw, msgs, cmds, _ := hop.snapshot()
			if i := hasHigh(raw); i >= 0 {
				t.Fatalf("octet > 127 sent at offset %d: %q", i, raw[max(0, i-20):min(len(raw), i+20)])
			}
			for _, c := range cmds {
				if strings.Contains(c, "BODY=8BITMIME") {
					t.Errorf("claimed 8BITMIME: %q", c)
				}
			}
			if tt.state == queue.Sent {
				if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte("Gr=C3=BC=C3=9Fe")) {
					t.Errorf("converted content = %q", msgs)
				}
				if !strings.Contains(logs.String(), "body=8BITMIME→7BIT converted") {
					t.Errorf("plan not logged:\n%s", logs)
				}
			}
		})
	}
}

func TestEightBitToEightBitHop(t *testing.T) {
	hop := newFakeHop(t, "8BITMIME", "PIPELINING").start()
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), nil)
	a.DeliverLease(context.Background(), lease(testMessage("8C", eightBitMsg, "x@hop.test")))
	q.expect(t, "8C", 0, queue.Sent, "250")
	_, msgs, cmds, _ := hop.snapshot()
	if len(msgs) != 1 || string(msgs[0]) != eightBitMsg {
		t.Errorf("content = %q, want byte-identical", msgs)
	}
	if !containsPrefix(cmds, "MAIL FROM:<sender@origin.example> BODY=8BITMIME") {
		t.Errorf("commands = %q", cmds)
	}
	// The route's discard list hides 8BITMIME: conversion happens.
	hop2 := newFakeHop(t, "8BITMIME", "PIPELINING").start()
	rt := hop2.route()
	rt.Policy.DiscardKeywords = []string{"8bitmime"}
	q2 := newMemQueue()
	a2, _ := testAgent(t, q2, rt, func(c *Config) { c.Converter = fakeConverter{} })
	a2.DeliverLease(context.Background(), lease(testMessage("8D", eightBitMsg, "x@hop.test")))
	q2.expect(t, "8D", 0, queue.Sent, "250")
	if raw, _, _, _ := hop2.snapshot(); hasHigh(raw) >= 0 {
		t.Errorf("8-bit sent although the route discards 8BITMIME")
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestBinaryMIMEWithBDAT(t *testing.T) {
	hop := newFakeHop(t, "8BITMIME", "BINARYMIME", "CHUNKING", "PIPELINING").start()
	q := newMemQueue()
	a, logs := testAgent(t, q, hop.route(), nil)
	bin := "Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\r\nbare\nLF\r\n"
	a.DeliverLease(context.Background(), lease(testMessage("B1", bin, "x@hop.test")))
	q.expect(t, "B1", 0, queue.Sent, "250")
	_, msgs, cmds, _ := hop.snapshot()
	if len(msgs) != 1 || string(msgs[0]) != bin {
		t.Errorf("BDAT content = %q, want %q", msgs, bin)
	}
	if !containsPrefix(cmds, "MAIL FROM:<sender@origin.example> BODY=BINARYMIME") || !containsPrefix(cmds, "BDAT "+itoa(len(bin))+" LAST") {
		t.Errorf("commands = %q", cmds)
	}
	if !strings.Contains(logs.String(), "body=BINARYMIME, BDAT") {
		t.Errorf("plan not logged:\n%s", logs)
	}
}

func TestSMTPUTF8ALabels(t *testing.T) {
	hop := newFakeHop(t, "8BITMIME", "PIPELINING").start()
	q := newMemQueue()
	a, _ := testAgent(t, q, hop.route(), nil)
	it := testMessage("U1", plainMsg, "x@bücher.example", "jörg@hop.test")
	it.Env.SMTPUTF8 = true
	it2 := testMessage("U2", plainMsg, "x@bücher.example")
	it2.Env.SMTPUTF8 = true
	a.DeliverLease(context.Background(), lease(it, it2))
	q.expect(t, "U1", 0, queue.Sent, "250") // A-labelled
	q.expect(t, "U1", 1, queue.Failed, "553 5.6.7")
	q.expect(t, "U2", 0, queue.Sent, "250")
	_, _, cmds, _ := hop.snapshot()
	if n := strings.Count(strings.Join(cmds, "\n"), "RCPT TO:<x@xn--bcher-kva.example>"); n != 2 {
		t.Errorf("A-labelled RCPT sent %d times, want 2: %q", n, cmds)
	}
	for _, c := range cmds {
		if hasHigh([]byte(c)) >= 0 {
			t.Errorf("non-ASCII command %q to a hop without SMTPUTF8", c)
		}
	}
	// A non-ASCII sender local part fails the whole message.
	it3 := testMessage("U3", plainMsg, "x@hop.test")
	it3.Env.From.LocalPart = "jörg"
	a.DeliverLease(context.Background(), lease(it3))
	q.expect(t, "U3", 0, queue.Failed, "553 5.6.7")
}

func TestDSNParameters(t *testing.T) {
	for _, offered := range []bool{true, false} {
		kw := []string{"PIPELINING"}
		if offered {
			kw = append(kw, "DSN")
		}
		hop := newFakeHop(t, kw...).start()
		q := newMemQueue()
		a, logs := testAgent(t, q, hop.route(), nil)
		it := testMessage("DSN1", plainMsg, "x@hop.test")
		it.Env.Ret, it.Env.EnvID = "HDRS", "id+1=2"
		it.Env.Rcpts[0].Notify = smtp.NotifySuccess | smtp.NotifyFailure
		it.Env.Rcpts[0].ORcpt = "rfc822;x+tag@hop.test"
		a.DeliverLease(context.Background(), lease(it))
		q.expect(t, "DSN1", 0, queue.Sent, "250")
		_, _, cmds, _ := hop.snapshot()
		mail := "MAIL FROM:<sender@origin.example>"
		rcpt := "RCPT TO:<x@hop.test>"
		plan := "dsn=dropped (relayed DSN owed)"
		if offered {
			mail += " RET=HDRS ENVID=id+2B1+3D2"
			rcpt += " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2Btag@hop.test"
			plan = "dsn=passed"
		}
		if !slices.Contains(cmds, mail) || !slices.Contains(cmds, rcpt) {
			t.Errorf("DSN offered=%v: commands %q, want %q and %q", offered, cmds, mail, rcpt)
		}
		if !strings.Contains(logs.String(), plan) {
			t.Errorf("log lacks %q:\n%s", plan, logs)
		}
	}
}

func TestUnreachableHopDefersLease(t *testing.T) {
	port := testrelay.RefusedPort(t)
	q := newMemQueue()
	dials := 0
	a, _ := testAgent(t, q, route.Route{Pattern: "*", Hops: []route.NextHop{{Host: "127.0.0.1", Port: port, NoMX: true}}}, func(c *Config) {
		c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials++
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	})
	a.DeliverLease(context.Background(), lease(testMessage("UN1", plainMsg, "a@hop.test"), testMessage("UN2", plainMsg, "b@hop.test")))
	q.expect(t, "UN1", 0, queue.Deferred, "451 4.4.1")
	q.expect(t, "UN2", 0, queue.Deferred, "451 4.4.1")
	if dials != 1 {
		t.Errorf("dialled %d times for one unreachable hop", dials)
	}
}

// TestLeaseTakenBack: when the queue has taken a lease back (Renew fails),
// the worker stops before the next message, which may be leased to another
// worker already: nothing is delivered twice.
func TestLeaseTakenBack(t *testing.T) {
	hop := newFakeHop(t, "PIPELINING").start()
	q := newMemQueue()
	q.renewals = 1
	a, _ := testAgent(t, q, hop.route(), nil)
	a.DeliverLease(context.Background(), lease(
		testMessage("L1", plainMsg, "a@hop.test"),
		testMessage("L2", plainMsg, "b@hop.test"),
	))
	q.expect(t, "L1", 0, queue.Sent, "250")
	if _, msgs, _, _ := hop.snapshot(); len(msgs) != 1 {
		t.Errorf("%d messages delivered, want 1 (the second was taken back)", len(msgs))
	}
	q.mu.Lock()
	_, got := q.results["L2"]
	q.mu.Unlock()
	if got {
		t.Error("L2 was reported, though its lease was taken back")
	}
}
