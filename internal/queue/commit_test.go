package queue

import (
	"sync"
	"testing"
)

// TestOnCommit checks that the committer reports every group commit: the
// requests and octets it carried add up to at least what was submitted.
func TestOnCommit(t *testing.T) {
	var mu sync.Mutex
	var commits []CommitStats
	cfg := testConfig(t.TempDir(), nil, nil)
	cfg.OnCommit = func(st CommitStats) {
		mu.Lock()
		commits = append(commits, st)
		mu.Unlock()
	}
	q := mustOpen(t, cfg)
	const writers, each = 16, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				putBody(t, q, testEnv("a@example.com", "b@example.org"), bodyFor(w*each+i, 512))
			}
		})
	}
	wg.Wait()
	q.Close()
	mu.Lock()
	defer mu.Unlock()
	var requests, records, bytes int
	for _, c := range commits {
		if c.Requests < 1 || c.Records < c.Requests || c.Bytes <= 0 || c.Sync < 0 {
			t.Errorf("implausible commit %+v", c)
		}
		requests += c.Requests
		records += c.Records
		bytes += c.Bytes
	}
	if requests < writers*each || bytes < writers*each*512 {
		t.Errorf("%d commits carried %d requests, %d octets; want at least %d Puts of 512 octets", len(commits), requests, bytes, writers*each)
	}
}
