package access

import (
	"container/list"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// DefaultMaxRateEntries is the number of clients (and, separately, users) a
// RateLimiter tracks when RateConfig.MaxEntries is zero.
const DefaultMaxRateEntries = 10000

// RateLimit is a message rate: at most Messages in any Interval, with bursts
// up to Messages, refilled evenly over the Interval (a token bucket).
// Messages == 0 disables the limit.
type RateLimit struct {
	Messages int
	Interval time.Duration
}

// enabled reports whether the limit is set.
func (r RateLimit) enabled() bool { return r.Messages > 0 }

// String formats the rate for reasons, e.g. "100/1h0m0s".
func (r RateLimit) String() string { return fmt.Sprintf("%d/%s", r.Messages, r.Interval) }

// validate checks a rate limit; what names it in errors.
func (r RateLimit) validate(what string) error {
	switch {
	case r.Messages < 0:
		return fmt.Errorf("%s: messages %d must not be negative", what, r.Messages)
	case r.Messages == 0:
		return nil
	case r.Interval <= 0:
		return fmt.Errorf("%s: interval %s must be positive", what, r.Interval)
	case r.Interval/time.Duration(r.Messages) <= 0:
		return fmt.Errorf("%s: %d messages per %s is too fine", what, r.Messages, r.Interval)
	}
	return nil
}

// RateConfig configures message rate limits per client IP and per
// authenticated user. Both apply to an authenticated client; a message is
// counted against both only when both allow it.
type RateConfig struct {
	// PerIP limits messages per client address. IPv6 clients are counted
	// per /64, the usual size of one site's network, so an attacker cannot
	// escape the limit by hopping addresses within it.
	PerIP RateLimit
	// PerUser limits messages per authenticated user name.
	PerUser RateLimit
	// Exempt lists client networks the per-IP limit does not apply to
	// (Postfix's smtpd_client_event_limit_exceptions). Nil means none.
	Exempt []netip.Prefix
	// MaxEntries bounds the number of tracked addresses, and separately of
	// tracked users; zero means DefaultMaxRateEntries. Entries idle for a
	// whole Interval are dropped as they are found (they hold a full
	// bucket, so nothing is lost); when the table is full of active entries
	// the least recently used one is dropped.
	MaxEntries int
}

// enabled reports whether any limit is set.
func (c RateConfig) enabled() bool { return c.PerIP.enabled() || c.PerUser.enabled() }

// validate checks the limits, the table size and the exempt networks.
func (c RateConfig) validate() error {
	if err := c.PerIP.validate("rate per_ip"); err != nil {
		return err
	}
	if err := c.PerUser.validate("rate per_user"); err != nil {
		return err
	}
	if c.MaxEntries < 0 {
		return fmt.Errorf("rate max_entries %d: must not be negative", c.MaxEntries)
	}
	if _, err := newNetSet("rate exempt", c.Exempt); err != nil {
		return err
	}
	return nil
}

// RateLimiter counts messages per client address and per user. It is the
// only stateful part of the access policy; the clock is the now argument of
// Allow, so tests drive it. A RateLimiter is safe for concurrent use.
type RateLimiter struct {
	mu     sync.Mutex
	ip     bucketTable
	user   bucketTable
	exempt netSet
}

// NewRateLimiter validates cfg and returns a limiter.
func NewRateLimiter(cfg RateConfig) (*RateLimiter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	exempt, err := newNetSet("rate exempt", cfg.Exempt)
	if err != nil {
		return nil, err
	}
	maxEntries := cfg.MaxEntries
	if maxEntries == 0 {
		maxEntries = DefaultMaxRateEntries
	}
	return &RateLimiter{
		ip:     newBucketTable(cfg.PerIP, maxEntries),
		user:   newBucketTable(cfg.PerUser, maxEntries),
		exempt: exempt,
	}, nil
}

// Allow decides whether the client may send one more message at time now,
// and counts the message when it may. Beyond a limit the decision carries
// 450 4.7.1. A client without a valid address is not limited per IP.
func (l *RateLimiter) Allow(c Client, now time.Time) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ip.sweep(now)
	l.user.sweep(now)

	var ipB, userB *bucket
	ip := clientAddr(c.IP)
	if l.ip.limit.enabled() && ip.IsValid() {
		if _, exempt := l.exempt.match(ip); !exempt {
			ipB = l.ip.get(ipKey(ip), now)
		}
	}
	if l.user.limit.enabled() && c.User != "" {
		userB = l.user.get(c.User, now)
	}
	if ipB != nil && !l.ip.conforms(ipB, now) {
		return Decision{
			Reply:  ReplyRateLimited(),
			Reason: fmt.Sprintf("client %s over %s messages, next in %s", c.IP, l.ip.limit, l.ip.wait(ipB, now)),
		}
	}
	if userB != nil && !l.user.conforms(userB, now) {
		return Decision{
			Reply:  ReplyRateLimited(),
			Reason: fmt.Sprintf("user %q over %s messages, next in %s", c.User, l.user.limit, l.user.wait(userB, now)),
		}
	}
	if ipB != nil {
		l.ip.take(ipB, now)
	}
	if userB != nil {
		l.user.take(userB, now)
	}
	return Decision{Allow: true, Reason: "within rate limits"}
}

// Len returns the number of tracked addresses and users, for metrics and
// tests.
func (l *RateLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ip.entries) + len(l.user.entries)
}

// ipKey returns the key an address is counted under: the IPv4 address, or
// the /64 of an IPv6 address.
func ipKey(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}

// bucket is one key's state in the generic cell rate algorithm form of a
// token bucket: tat is the theoretical arrival time of the next message;
// the bucket is full when tat <= now.
type bucket struct {
	key  string
	tat  time.Time
	seen time.Time // last use, for eviction
}

// bucketTable holds the buckets of one kind of key with LRU order.
type bucketTable struct {
	limit    RateLimit
	emission time.Duration // Interval / Messages: time one message's token takes to refill
	tau      time.Duration // burst tolerance: Interval - emission
	max      int
	entries  map[string]*list.Element
	lru      *list.List // front: most recently used; values are *bucket
}

// newBucketTable returns an empty table for a validated limit.
func newBucketTable(limit RateLimit, maxEntries int) bucketTable {
	t := bucketTable{limit: limit, max: maxEntries, entries: map[string]*list.Element{}, lru: list.New()}
	if limit.enabled() {
		t.emission = limit.Interval / time.Duration(limit.Messages)
		t.tau = limit.Interval - t.emission
	}
	return t
}

// maxSweep bounds the idle entries dropped per Allow, so one call's cost is
// bounded while memory still follows the number of active keys.
const maxSweep = 4

// sweep drops up to maxSweep least recently used entries that have been idle
// for a whole Interval; their buckets are full, so dropping them loses
// nothing.
func (t *bucketTable) sweep(now time.Time) {
	for i := 0; i < maxSweep; i++ {
		e := t.lru.Back()
		if e == nil {
			return
		}
		b := e.Value.(*bucket)
		if now.Sub(b.seen) < t.limit.Interval {
			return
		}
		t.lru.Remove(e)
		delete(t.entries, b.key)
	}
}

// get returns key's bucket, creating a full one (and evicting the least
// recently used entry when the table is full), and marks it used.
func (t *bucketTable) get(key string, now time.Time) *bucket {
	if e, ok := t.entries[key]; ok {
		t.lru.MoveToFront(e)
		b := e.Value.(*bucket)
		if now.After(b.seen) {
			b.seen = now
		}
		return b
	}
	for len(t.entries) >= t.max {
		e := t.lru.Back()
		t.lru.Remove(e)
		delete(t.entries, e.Value.(*bucket).key)
	}
	b := &bucket{key: key, tat: now, seen: now}
	t.entries[key] = t.lru.PushFront(b)
	return b
}

// conforms reports whether one more message fits the bucket at now.
func (t *bucketTable) conforms(b *bucket, now time.Time) bool {
	return b.tat.Sub(now) <= t.tau
}

// take counts one message against the bucket.
func (t *bucketTable) take(b *bucket, now time.Time) {
	if b.tat.Before(now) {
		b.tat = now
	}
	b.tat = b.tat.Add(t.emission)
}

// wait returns how long until the bucket conforms again.
func (t *bucketTable) wait(b *bucket, now time.Time) time.Duration {
	return b.tat.Sub(now) - t.tau
}
