package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
)

func TestStartTLS(t *testing.T) {
	cert, roots := testCerts(t)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	tests := []struct {
		name     string
		keywords []string
		mode     route.TLSMode
		roots    bool
		state    queue.RcptState
		reply    string
		tls      bool
	}{
		{"may, unverified", []string{"STARTTLS", "PIPELINING"}, route.TLSMay, false, queue.Sent, "250", true},
		{"required, verified", []string{"STARTTLS"}, route.TLSRequired, true, queue.Sent, "250", true},
		{"required, unknown CA", []string{"STARTTLS"}, route.TLSRequired, false, queue.Deferred, "451 4.7.5", false},
		{"required, not offered", []string{"PIPELINING"}, route.TLSRequired, true, queue.Deferred, "451 4.7.10", false},
		{"may, not offered", []string{"PIPELINING"}, route.TLSMay, false, queue.Sent, "250", false},
		{"none", []string{"STARTTLS"}, route.TLSNone, false, queue.Sent, "250", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hop := newFakeHop(t, tt.keywords...)
			hop.tlsConfig = srvTLS
			hop.start()
			q := newMemQueue()
			rt := hop.route()
			rt.Policy.TLS = tt.mode
			a, _ := testAgent(t, q, rt, func(c *Config) {
				if tt.roots {
					c.RootCAs = roots
				} else {
					c.RootCAs = x509.NewCertPool()
				}
			})
			a.DeliverLease(context.Background(), lease(testMessage("TLS", plainMsg, "x@hop.test")))
			q.expect(t, "TLS", 0, tt.state, tt.reply)
			info, ok := a.Hops().Get(hop.target().HopKey())
			if tt.state == queue.Sent && (!ok || info.TLS != tt.tls) {
				t.Errorf("hop cache = %+v", info)
			}
			_, _, cmds, _ := hop.snapshot()
			if tt.tls {
				if n := strings.Count(strings.Join(cmds, "\n"), "EHLO ferry.test"); n != 2 {
					t.Errorf("EHLO sent %d times, want 2 (before and after TLS)", n)
				}
				all := strings.Join(cmds, "\n")
				if i, j := strings.Index(all, "STARTTLS"), strings.Index(all, "MAIL FROM"); i < 0 || j < i {
					t.Errorf("MAIL FROM before STARTTLS: %q", cmds)
				}
			}
		})
	}
}

func TestAuth(t *testing.T) {
	cert, _ := testCerts(t)
	hop := newFakeHop(t, "STARTTLS", "AUTH LOGIN PLAIN", "PIPELINING")
	hop.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	hop.start()
	q := newMemQueue()
	rt := hop.route()
	rt.Policy.Auth = &route.Credentials{Username: "u", Password: "p"}
	a, _ := testAgent(t, q, rt, nil)
	a.DeliverLease(context.Background(), lease(testMessage("A1", plainMsg, "x@hop.test")))
	q.expect(t, "A1", 0, queue.Sent, "250")
	_, _, cmds, _ := hop.snapshot()
	if !containsPrefix(cmds, "AUTH PLAIN AHUAcA==") {
		t.Errorf("commands = %q", cmds)
	}
	// Without TLS no credentials go out.
	hop2 := newFakeHop(t, "AUTH PLAIN").start()
	rt2 := hop2.route()
	rt2.Policy.Auth = &route.Credentials{Username: "u", Password: "p"}
	q2 := newMemQueue()
	a2, _ := testAgent(t, q2, rt2, nil)
	a2.DeliverLease(context.Background(), lease(testMessage("A2", plainMsg, "x@hop.test")))
	q2.expect(t, "A2", 0, queue.Deferred, "451 4.7.10")
	if _, _, cmds, _ := hop2.snapshot(); containsPrefix(cmds, "AUTH") {
		t.Errorf("AUTH sent without TLS: %q", cmds)
	}
}
