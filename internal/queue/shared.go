package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// This file holds what every backend of the queue contract shares, so that
// the segment log and the shared PostgreSQL queue give the same IDs, retry
// times, replies and envelope encoding.

// idAlphabet is base32 in ASCII order, so IDs sort by time.
const idAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDGen makes queue IDs: 13 base32 characters that sort by creation time.
// An ID holds milliseconds since 2020 (42 bits), a counter (14 bits) and an
// 8-bit tag fixed per generator, so generators with different tags (one per
// process, or per node sharing a queue) never make the same ID. It is safe
// for concurrent use.
type IDGen struct {
	clock func() time.Time
	tag   uint64

	mu   sync.Mutex
	last uint64
	seq  uint64
}

// NewIDGen returns a generator with the low 8 bits of tag.
func NewIDGen(clock func() time.Time, tag uint64) *IDGen {
	if clock == nil {
		clock = time.Now
	}
	return &IDGen{clock: clock, tag: tag & 0xff}
}

// Next returns a new ID.
func (g *IDGen) Next() string {
	const epoch = 1577836800000 // 2020-01-01 in Unix milliseconds
	ms := uint64(max(g.clock().UnixMilli()-epoch, 0))
	g.mu.Lock()
	if ms <= g.last {
		ms = g.last
		g.seq++
		if g.seq >= 1<<14 {
			ms++
			g.seq = 0
		}
	} else {
		g.seq = 0
	}
	g.last = ms
	v := (ms&(1<<42-1))<<22 | g.seq<<8 | g.tag
	g.mu.Unlock()
	var b [13]byte
	// 13 characters × 5 bits = 65 bits; the top character holds 4 bits.
	for i := 12; i >= 0; i-- {
		b[i] = idAlphabet[v&31]
		v >>= 5
	}
	return string(b[:])
}

// RetryDelay returns the delay before the retry that follows attempt number
// n (1 for the first attempt): initial doubled per attempt up to maxDelay,
// spread by jitter (0 to 1) drawn from seed and n, so that every recipient
// deferred in one attempt gets the same delay and they are retried together
// in one transaction. Seed with JitterSeed(id).
func RetryDelay(initial, maxDelay time.Duration, jitter float64, n int, seed uint64) time.Duration {
	return retryDelay(initial, maxDelay, jitter, n, seed)
}

func retryDelay(initial, maxDelay time.Duration, jitter float64, n int, seed uint64) time.Duration {
	d := initial
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	if jitter > 0 {
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		d = time.Duration(float64(d) * (1 + jitter*(2*r.Float64()-1)))
	}
	return d
}

// JitterSeed derives the backoff jitter seed of a message from its ID.
func JitterSeed(id string) uint64 { return jitterSeed(id) }

// ExpiryReply is the reply given to a recipient that failed because its
// message outlived lifetime: RFC 3463 X.4.7 "delivery time expired", kept in
// class 4 as the condition itself was transient; the recipient's state
// (Failed) is what makes it final. last is the recipient's last reply.
func ExpiryReply(lifetime time.Duration, last smtp.Reply) smtp.Reply {
	age := fmt.Sprintf("%s", lifetime)
	if lifetime%(24*time.Hour) == 0 {
		age = fmt.Sprintf("%d days", lifetime/(24*time.Hour))
		if lifetime == 24*time.Hour {
			age = "1 day"
		}
	}
	text := "Message expired after " + age
	if last.Code != 0 {
		text += "; last reply: " + last.String()
	} else {
		text += "; no delivery attempt was answered"
	}
	// A message that waited for security the hop never offered ends with
	// that security failure made permanent (DESIGN.md §1): 5.7.10 for
	// STARTTLS a route requires, 5.7.30 for REQUIRETLS (RFC 8689 §5), 5.7.5
	// for a failed handshake or certificate check.
	switch last.Enhanced {
	case "4.7.10", "4.7.30", "4.7.5":
		return smtp.NewReply(554, last.Enhanced.WithClass(5), text)
	}
	return smtp.NewReply(451, "4.4.7", text)
}

// AdminBounceReply is the reply recorded for recipients failed by BounceNow.
func AdminBounceReply() smtp.Reply {
	return smtp.NewReply(554, "5.0.0", "Message bounced by the administrator")
}

// MatchEnvelope applies the sender and recipient filters of f to env.
func MatchEnvelope(env *smtp.Envelope, f Filter) bool {
	if f.Sender != "" && !containsFold(addrString(env.From), f.Sender) {
		return false
	}
	if f.Recipient != "" {
		for _, r := range env.Rcpts {
			if containsFold(addrString(r.Addr), f.Recipient) {
				return true
			}
		}
		return false
	}
	return true
}

// HopKey returns the next-hop key of a recipient: its domain in lower case.
func HopKey(p smtp.Path) string { return hopKey(p) }

// EncodeEnvelope appends the encoding of env without its ID (version 2,
// with the extension trailer of docs/queue-format.md) to b. Every backend
// stores envelopes in this form, so a new envelope field flows through all
// of them.
func EncodeEnvelope(b []byte, env *smtp.Envelope) []byte { return encodeEnvelope(b, env) }

// DecodeEnvelope decodes an envelope written by EncodeEnvelope and gives it
// the ID id.
func DecodeEnvelope(id string, p []byte) (*smtp.Envelope, error) { return decodeEnvelope(id, p) }

func addrString(p smtp.Path) string {
	if p.IsNull() {
		return "<>"
	}
	return p.LocalPart + "@" + p.Domain
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// WaitWake waits until wake is closed or d has passed, and returns nil; or
// until ctx is done, and returns its error. Idle Lease calls of every
// backend wait with it.
func WaitWake(ctx context.Context, wake <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-t.C:
	}
	return nil
}

// OrDefault sets *v to def when *v is zero or negative.
func OrDefault[T int | int32 | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// JitterOrDefault returns the retry jitter to use for a configured one: def
// for 0, none for a negative value, at most 1.
func JitterOrDefault(j, def float64) float64 {
	switch {
	case j == 0:
		return def
	case j < 0:
		return 0
	}
	return min(j, 1)
}
