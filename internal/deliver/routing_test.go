package deliver

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
)

// mapDNS answers from maps; anything else does not exist.
type mapDNS struct {
	mx map[string][]*net.MX
	ip map[string]string
}

func (m mapDNS) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if r, ok := m.mx[name]; ok {
		return r, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (m mapDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, ok := m.ip[host]; ok {
		return []netip.Addr{netip.MustParseAddr(ip)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestRoutingOutcomes(t *testing.T) {
	hop := newFakeHop(t, "PIPELINING").start()
	port := strconv.Itoa(hop.target().Port)
	dns := mapDNS{
		mx: map[string][]*net.MX{
			"relay.test": {{Host: "mx2.relay.test.", Pref: 20}, {Host: "mx1.relay.test.", Pref: 10}},
			"null.test":  {{Host: ".", Pref: 0}},
		},
		// mx1 is a loopback address nobody listens on: refused, then mx2.
		ip: map[string]string{"mx1.relay.test": "127.0.0.2", "mx2.relay.test": "127.0.0.1"},
	}
	var routes []route.Route
	for _, s := range []string{"hop.test=relay.test:" + port, "null.test=direct", "gone.test=[nowhere.test]:" + port} {
		r, err := route.ParseRouteFlag(s)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
	}
	tab, err := route.NewTable(route.Options{Resolver: dns}, routes...)
	if err != nil {
		t.Fatal(err)
	}
	q := newMemQueue()
	a, logs := testAgent(t, q, hop.route(), func(c *Config) { c.Routes = tab })

	a.DeliverLease(context.Background(), &queue.Lease{Hop: "hop.test", Items: []queue.Item{testMessage("MX1", plainMsg, "x@hop.test")}})
	q.expect(t, "MX1", 0, queue.Sent, "250")
	if r := q.last(t, "MX1", 0); r.RemoteMTA != "mx2.relay.test[127.0.0.1]:"+port {
		t.Errorf("RemoteMTA = %q", r.RemoteMTA)
	}
	if !strings.Contains(logs.String(), "MX1: to=<x@hop.test>, relay=mx2.relay.test[127.0.0.1]:"+port+", delay=") {
		t.Errorf("log line:\n%s", logs)
	}

	a.DeliverLease(context.Background(), &queue.Lease{Hop: "null.test", Items: []queue.Item{testMessage("NMX", plainMsg, "x@null.test")}})
	q.expect(t, "NMX", 0, queue.Failed, "556 5.1.10")
	if !strings.Contains(logs.String(), "NMX: to=<x@null.test>, relay=none, delay=") {
		t.Errorf("log line:\n%s", logs)
	}

	a.DeliverLease(context.Background(), &queue.Lease{Hop: "gone.test", Items: []queue.Item{testMessage("GONE", plainMsg, "x@gone.test")}})
	q.expect(t, "GONE", 0, queue.Deferred, "451 4.4.4")

	a.DeliverLease(context.Background(), &queue.Lease{Hop: "nxdomain.test", Items: []queue.Item{testMessage("NX", plainMsg, "x@nxdomain.test")}})
	q.expect(t, "NX", 0, queue.Failed, "550 5.4.4")
}
