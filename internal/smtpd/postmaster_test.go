package smtpd

import (
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

// TestPostmasterWithoutDomain: "RCPT TO:<Postmaster>" without a domain is
// accepted (RFC 5321 §4.1.1.3) and, with a postmaster configured, stored
// with that address; without one the bare recipient is kept.
func TestPostmasterWithoutDomain(t *testing.T) {
	for _, tc := range []struct {
		name       string
		postmaster smtp.Path
		want       smtp.Path
	}{
		{"configured", smtp.Path{LocalPart: "hostmaster", Domain: "example.com"}, smtp.Path{LocalPart: "hostmaster", Domain: "example.com"}},
		{"not configured", smtp.Path{}, smtp.Path{LocalPart: "Postmaster"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Postmaster = tc.postmaster
			store := &memStore{}
			_, addr := startServer(t, cfg, store, nil)
			c := dial(t, addr)
			c.expectPrefix("220 ")
			c.send("HELO client.test\r\n")
			c.expect("250 mx.test\r\n")
			c.send("MAIL FROM:<a@example.org>\r\n")
			c.expect("250 Ok\r\n")
			c.send("RCPT TO:<Postmaster>\r\n")
			c.expect("250 Ok\r\n")
			c.send("DATA\r\n")
			c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
			c.send("Subject: hi\r\n\r\nhello\r\n.\r\n")
			c.expectPrefix("250 Ok: queued as ")
			msgs := store.messages()
			if len(msgs) != 1 || len(msgs[0].env.Rcpts) != 1 {
				t.Fatalf("stored %d messages", len(msgs))
			}
			if got := msgs[0].env.Rcpts[0].Addr; got != tc.want {
				t.Errorf("recipient stored as %+v, want %+v", got, tc.want)
			}
		})
	}
}
