package tlspolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// savedCounts is one (domain, policy type) of the counts as stored in the
// spool between runs.
type savedCounts struct {
	Domain   string         `json:"domain"`
	Type     string         `json:"policy_type"`
	Success  int64          `json:"success"`
	Failures []savedFailure `json:"failures,omitempty"`
	Policy   []string       `json:"policy,omitempty"`
	MXHosts  []string       `json:"mx_hosts,omitempty"`
}

type savedFailure struct {
	ResultType string `json:"result_type"`
	MX         string `json:"mx,omitempty"`
	IP         string `json:"ip,omitempty"`
	Sessions   int64  `json:"sessions"`
}

// SaveCounts writes the counts not yet reported to file (atomically), so
// that a restart does not lose them; nothing is written when there are
// none.
func (e *Engine) SaveCounts(file string) error {
	m := e.out.take()
	if len(m) == 0 {
		return nil
	}
	var out []savedCounts
	for k, c := range m {
		sc := savedCounts{Domain: k[0], Type: k[1], Success: c.success, Policy: c.policy, MXHosts: c.mxHosts}
		for _, fk := range c.sortedKeys() {
			sc.Failures = append(sc.Failures, savedFailure{ResultType: fk.resultType, MX: fk.mx, IP: fk.ip, Sessions: c.failures[fk]})
		}
		out = append(out, sc)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("tlspolicy: saving TLS report counts: %w", err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("tlspolicy: saving TLS report counts: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("tlspolicy: saving TLS report counts: %w", err)
	}
	return nil
}

// LoadCounts adds the counts saved in file to the engine's and removes the
// file; a missing file is no error.
func (e *Engine) LoadCounts(file string) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tlspolicy: loading TLS report counts: %w", err)
	}
	var in []savedCounts
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("tlspolicy: loading TLS report counts from %s: %w", file, err)
	}
	for _, sc := range in {
		e.out.add(sc.Domain, sc.Type, sc.Policy, sc.MXHosts, failureKey{}, sc.Success)
		for _, f := range sc.Failures {
			e.out.add(sc.Domain, sc.Type, sc.Policy, sc.MXHosts, failureKey{resultType: f.ResultType, mx: f.MX, ip: f.IP}, f.Sessions)
		}
	}
	return os.Remove(file)
}
