package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ferrymta/ferry/internal/smtp"
)

// DSN configures the delivery status notifications Ferry sends (RFC 3461,
// RFC 3464); the delay warning time is Queue.DelayWarning.
type DSN struct {
	// Postmaster, when set, is the address ("local@domain") that gets
	// failure reports about messages with the null reverse path (reports
	// that could not be delivered themselves), and mail to "<Postmaster>"
	// without a domain (RFC 5321 §4.1.1.3). Empty: those reports are
	// logged and dropped.
	Postmaster string
	// MaxReturnSize caps the size of a message returned in full in a
	// failure report (RET=FULL, RFC 3461 §4.3); a larger message is
	// returned as its header only. 0 returns headers only.
	MaxReturnSize int64
}

// Transcripts selects the SMTP sessions whose protocol transcript is
// written: inbound sessions from Clients and outbound sessions to
// NextHops, one file per session in Dir.
type Transcripts struct {
	// Dir is the directory of the transcript files; empty: none are
	// written, whatever the other fields say.
	Dir string
	// Clients are the client networks whose inbound sessions are
	// recorded.
	Clients []netip.Prefix
	// NextHops are the next hops whose outbound sessions are recorded:
	// a host name as the route or MX names it ("mx.example.com"), a
	// leading dot for its subdomains (".example.com"), or an IP address.
	// Lower case.
	NextHops []string
	// FullContent records the message content line by line; otherwise
	// the transcript notes only its size.
	FullContent bool
}

// Enabled reports whether the rules can select any session.
func (t Transcripts) Enabled() bool {
	return t.Dir != "" && (len(t.Clients) > 0 || len(t.NextHops) > 0)
}

// MatchClient reports whether an inbound session from ip is recorded.
func (t Transcripts) MatchClient(ip netip.Addr) bool {
	if t.Dir == "" || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range t.Clients {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// MatchNextHop reports whether an outbound session to host (a next-hop
// or MX host name) at address ip is recorded.
func (t Transcripts) MatchNextHop(host string, ip netip.Addr) bool {
	if t.Dir == "" {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range t.NextHops {
		switch {
		case strings.HasPrefix(h, "."):
			if strings.HasSuffix(host, h) {
				return true
			}
		case h == host:
			return true
		case ip.IsValid():
			if a, err := netip.ParseAddr(h); err == nil && a.Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}

// CheckNextHopPattern normalizes one entry of Transcripts.NextHops: a host
// name, ".parent" for its subdomains, or an IP address (brackets allowed).
func CheckNextHopPattern(s string) (string, error) {
	t := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(s, "]"), "["), ".")
	if a, err := netip.ParseAddr(t); err == nil {
		if a.Zone() != "" {
			return "", errors.New("an IP address with a zone")
		}
		return a.Unmap().String(), nil
	}
	if t != s && strings.HasPrefix(s, "[") {
		return "", fmt.Errorf("%q in brackets is not an IP address", t)
	}
	name := strings.TrimPrefix(t, ".")
	if err := checkDomain(name); err != nil {
		return "", err
	}
	return strings.ToLower(t), nil
}

// ParseTranscriptClients parses client networks for Transcripts.Clients,
// as the [transcripts] section and the admin API give them.
func ParseTranscriptClients(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := checkNetwork(s)
		if err != nil {
			return nil, fmt.Errorf("client network %q: %w", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func checkPostmaster(s string) (string, error) {
	p, err := smtp.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return p.Address(), nil
}

const (
	wantPostmaster = `an address like "postmaster@example.com", or "" (none)`
	wantHopList    = `a list of next hops like "mx.example.com", ".example.com" (its subdomains) or "192.0.2.25"`
)

// dsn decodes the [dsn] table.
func (d *decoder) dsn(v any, path string, c *DSN) {
	d.table(v, path, map[string]field{
		"postmaster":      d.strCheck(&c.Postmaster, wantPostmaster, true, checkPostmaster),
		"max_return_size": d.size(&c.MaxReturnSize, 0),
	})
}

// transcripts decodes the [transcripts] table.
func (d *decoder) transcripts(v any, path string, t *Transcripts) {
	errs := len(d.errs)
	d.table(v, path, map[string]field{
		"dir":          d.str(&t.Dir, wantPath),
		"clients":      d.networks(&t.Clients, false),
		"next_hops":    d.strList(&t.NextHops, wantHopList, false, CheckNextHopPattern),
		"full_content": d.boolean(&t.FullContent),
	})
	if len(d.errs) == errs && t.Dir == "" && (len(t.Clients) > 0 || len(t.NextHops) > 0) {
		d.errf(path+".dir", "want a directory for the transcripts of the clients and next hops listed, got none")
	}
}
