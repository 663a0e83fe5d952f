package tlspolicy

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"strings"
)

// hostsTable is /etc/hosts (hosts(5)): names the system resolves without
// DNS, which Ferry's own DNS client honours for address lookups as the
// system resolver would. Its answers are never DNSSEC-secure.
type hostsTable map[string][]netip.Addr

// readHosts parses a hosts file; a missing or unreadable file is an empty
// table, as for the system resolver.
func readHosts(file string) hostsTable {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	t := hostsTable{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		for _, name := range f[1:] {
			n := strings.ToLower(strings.TrimSuffix(name, "."))
			t[n] = append(t[n], ip.WithZone(""))
		}
	}
	return t
}

// lookup returns the addresses of name for network ("ip", "ip4", "ip6").
func (t hostsTable) lookup(network, name string) []netip.Addr {
	var out []netip.Addr
	for _, ip := range t[strings.ToLower(strings.TrimSuffix(name, "."))] {
		switch {
		case network == "ip4" && !ip.Is4():
		case network == "ip6" && ip.Is4():
		default:
			out = append(out, ip)
		}
	}
	return out
}
