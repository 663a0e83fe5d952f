package smtpd

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestTLSRequiredNoField(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"Subject: x\r\nTLS-Required: No\r\n\r\nbody", true},
		{"tls-required:no\r\n\r\n", true},
		{"TLS-Required:\r\n  NO \r\n\r\n", true},
		{"TLS-Required: Yes\r\n\r\n", false},
		{"Subject: x\r\n\r\nTLS-Required: No\r\n", false}, // in the body
		{"X-TLS-Required: No\r\n\r\n", false},
		{"Subject: TLS-Required: No\r\n\r\n", false},
		{"Subject: x\nTLS-Required: No\n\nbody", true}, // bare LF line ends
		{"TLS-Required:\r\n\tNo\r\n\r\n", true},        // folded with a tab
		{"TLS-Required: No", true},                     // header only, no line end
		{"TLS-Required: No\r\n Thanks\r\n\r\n", false}, // the unfolded value is not "No"
		{"\r\nTLS-Required: No\r\n", false},            // empty header
	} {
		if got := tlsRequiredNo([]byte(tc.header)); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.header, got, tc.want)
		}
	}
}

// TestHeaderPeekSplitReads: the end of the header is found when it arrives
// split across reads, and every octet reaches the store.
func TestHeaderPeekSplitReads(t *testing.T) {
	msg := "Subject: s\r\nTLS-Required: No\r\n\r\n" + strings.Repeat("body line\r\n", 1000)
	h := &headerPeek{r: iotest.OneByteReader(strings.NewReader(msg))}
	got := h.peek()
	if want := "Subject: s\r\nTLS-Required: No\r\n\r\n"; string(got) != want {
		t.Fatalf("peek = %q, want %q", got, want)
	}
	if !tlsRequiredNo(got) {
		t.Error("TLS-Required: No not found")
	}
	all, err := io.ReadAll(h)
	if err != nil || string(all) != msg {
		t.Fatalf("read %d octets (%v), want the %d of the message", len(all), err, len(msg))
	}
}

// TestTLSRequiredNoRecorded: the field is recorded in the envelope over
// DATA and BDAT (not when it is in the body), and the stored content is
// complete. TestStartTLS checks that REQUIRETLS overrides it.
func TestTLSRequiredNoRecorded(t *testing.T) {
	store := &memStore{}
	_, addr := startServer(t, testConfig(), store, nil)
	c := dial(t, addr)
	c.expectPrefix("220 ")
	c.send("EHLO client.test\r\n")
	for {
		if line := c.expectPrefix("250"); strings.HasPrefix(line, "250 ") {
			break
		}
	}
	msg := "Subject: s\r\nTLS-Required: No\r\n\r\n" + strings.Repeat("body line\r\n", 2000)
	envelope := func() {
		c.send("MAIL FROM:<a@b.test>\r\n")
		c.expectPrefix("250 ")
		c.send("RCPT TO:<c@d.test>\r\n")
		c.expectPrefix("250 ")
	}
	data := func(content string) {
		envelope()
		c.send("DATA\r\n")
		c.expectPrefix("354 ")
		c.send(content + ".\r\n")
		c.expectPrefix("250 ")
	}
	data(msg)
	envelope()
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(msg), msg))
	c.expectPrefix("250 ")
	data("Subject: plain\r\n\r\nTLS-Required: No\r\n")
	msgs := store.messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages stored", len(msgs))
	}
	for i, want := range []bool{true, true, false} {
		if msgs[i].env.TLSOptional != want {
			t.Errorf("message %d: TLSOptional %v, want %v", i, msgs[i].env.TLSOptional, want)
		}
	}
	for i := range 2 {
		if !strings.HasSuffix(string(msgs[i].body), msg) {
			t.Errorf("message %d: content changed (%d octets)", i, len(msgs[i].body))
		}
	}
}
