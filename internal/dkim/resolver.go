package dkim

import (
	"context"
	"net"
	"strings"
	"time"
)

// TXTResolver looks up the TXT records of a name: the one DNS query DKIM
// and ARC verification need (RFC 6376 §3.6.2). A miekg/dns-based resolver
// can stand behind it as well as NetResolver.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// NetResolver is a TXTResolver that sends every query to one DNS server,
// the configured resolver address, whatever /etc/resolv.conf says.
type NetResolver struct {
	r *net.Resolver
}

// NewNetResolver returns a resolver querying addr ("host:port"), over UDP
// and TCP as the answer needs.
func NewNetResolver(addr string) *NetResolver {
	d := net.Dialer{Timeout: 5 * time.Second}
	return &NetResolver{r: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// LookupTXT returns the TXT records of name, each record's strings joined
// (RFC 6376 §3.6.2.2). The name is looked up as absolute: no search list.
func (n *NetResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return n.r.LookupTXT(ctx, name)
}
