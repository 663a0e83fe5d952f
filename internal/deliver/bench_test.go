package deliver

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/sink"
)

// BenchmarkDeliverSink measures delivery of 4 KiB messages over one reused
// connection to a sink on loopback.
func BenchmarkDeliverSink(b *testing.B) { benchDeliverSink(b, nil) }

// benchDeliverSink is BenchmarkDeliverSink with the content scan the
// message was queued with (nil: none, so each attempt scans it).
func benchDeliverSink(b *testing.B, scan *downgrade.Needs) {
	_, rt := startSink(b, sink.Options{})
	q := newMemQueue()
	a, _ := testAgent(b, q, rt, func(c *Config) { c.MaxMessagesPerConn = 1 << 30 })
	body := "Subject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 64)
	it := testMessage("BENCH", body, "x@hop.test")
	it.Env.ContentScan = scan
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		a.DeliverLease(context.Background(), &queue.Lease{Hop: "hop.test", Items: []queue.Item{it}})
	}
	if r := q.last(b, "BENCH", 0); r.State != queue.Sent {
		b.Fatalf("last delivery: %v", r.Reply)
	}
}

// BenchmarkDeliverConverted measures delivery of 64 KiB of mostly-ASCII
// 8-bit text (quoted-printable after conversion) to a 7-bit hop, with and
// without SIZE: with it the content is converted before MAIL into a
// buffer, without it the conversion streams.
func BenchmarkDeliverConverted(b *testing.B) {
	for _, kw := range [][]string{{"PIPELINING", "SIZE"}, {"PIPELINING"}} {
		b.Run(strings.Join(kw, ","), func(b *testing.B) {
			_, rt := startSink(b, sink.Options{Keywords: kw})
			q := newMemQueue()
			a, _ := testAgent(b, q, rt, func(c *Config) { c.MaxMessagesPerConn, c.Converter = 1<<30, NewDowngrader(downgrade.Options{}) })
			head := "From: a@origin.example\r\nSubject: bench\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
			body := head + strings.Repeat("Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln, ein langer Brief \xc3\xbcber viele Zeilen.\r\n", 64<<10/60)
			it := testMessage("BENCH", body, "x@hop.test")
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				a.DeliverLease(context.Background(), &queue.Lease{Hop: "hop.test", Items: []queue.Item{it}})
			}
			if r := q.last(b, "BENCH", 0); r.State != queue.Sent {
				b.Fatalf("last delivery: %v", r.Reply)
			}
		})
	}
}
