package tlspolicy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// stsEntry is one cached MTA-STS policy, as stored in the spool: one JSON
// file per policy domain in the cache directory.
type stsEntry struct {
	Domain  string    `json:"domain"`
	ID      string    `json:"id"`
	Fetched time.Time `json:"fetched"`
	Expires time.Time `json:"expires"`
	// Body is the policy text as fetched.
	Body string `json:"policy"`
}

// stale reports whether the entry is past half its max_age and due for a
// refresh (it stays in force until it expires).
func (e stsEntry) stale(now time.Time) bool {
	return now.Sub(e.Fetched) > e.Expires.Sub(e.Fetched)/2
}

// result returns the cached policy as a lookup result.
func (e stsEntry) result(reason string) stsResult {
	p, err := ParseSTSPolicy(e.Body)
	if err != nil {
		return stsResult{reason: "cached MTA-STS policy unreadable: " + err.Error()}
	}
	return stsResult{policy: &p, reason: reason}
}

// stsCache is the MTA-STS policy cache: in memory, backed by files that
// survive restarts (RFC 8461 §5.1 wants policies cached for max_age).
type stsCache struct {
	dir      string
	readOnly bool
	mu       sync.Mutex
	m        map[string]stsEntry
}

// openSTSCache returns the cache in dir, which is made at the first
// store; a read-only cache never writes there.
func openSTSCache(dir string, readOnly bool) (*stsCache, error) {
	return &stsCache{dir: dir, readOnly: readOnly, m: map[string]stsEntry{}}, nil
}

// file is the cache file of a domain; domain names hold no "/" and are
// lower case.
func (c *stsCache) file(domain string) string {
	return filepath.Join(c.dir, strings.ReplaceAll(domain, "/", "_")+".json")
}

// get returns the cached entry of domain, reading its file the first time.
func (c *stsCache) get(domain string) (stsEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[domain]; ok {
		return e, true
	}
	b, err := os.ReadFile(c.file(domain))
	if err != nil {
		return stsEntry{}, false
	}
	var e stsEntry
	if json.Unmarshal(b, &e) != nil || e.Domain != domain {
		return stsEntry{}, false
	}
	c.m[domain] = e
	return e, true
}

// put stores e in memory and, atomically, in its file.
func (c *stsCache) put(e stsEntry) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[e.Domain] = e
	if c.readOnly {
		return nil
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("MTA-STS cache: %w", err)
	}
	tmp := c.file(e.Domain) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, c.file(e.Domain)); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	return nil
}
