package smtpd

import (
	"io"
	"testing"
	"time"
)

const timeoutReply = "421 4.4.2 mx.test Error: timeout exceeded\r\n"

// TestGreetingTimeout checks that the wait for the first command is bounded
// by Timeouts.Greeting, and later waits by Timeouts.Command.
func TestGreetingTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Greeting = 300 * time.Millisecond
	cfg.Timeouts.Command = 30 * time.Second
	_, addr := startServer(t, cfg, &memStore{}, nil)

	t.Run("silent client", func(t *testing.T) {
		c := dial(t, addr)
		c.expectPrefix("220 ")
		start := time.Now()
		c.expect(timeoutReply)
		c.expectClosed()
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Fatalf("closed after %v, want no sooner than 300ms", d)
		}
	})
	t.Run("after the first command", func(t *testing.T) {
		c := dial(t, addr)
		c.expectPrefix("220 ")
		c.send("HELO client.test\r\n")
		c.expectPrefix("250 ")
		c.expectSilence(700 * time.Millisecond) // past Greeting, within Command
		c.send("NOOP\r\n")
		c.expect("250 Ok\r\n") // no enhanced codes after HELO (RFC 2034 §3)
	})
}

// slowSender writes s one octet every interval from a goroutine until s is
// sent, a write fails or the test ends.
func slowSender(t *testing.T, c *client, s string, interval time.Duration) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for i := 0; i < len(s); i++ {
			c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := io.WriteString(c.conn, s[i:i+1]); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
		}
	}()
}

// TestDataTotalTimeout checks the slowloris bound: a transfer whose every
// read comes well within the idle timeout is still cut off with 421 4.4.2
// once it has taken Timeouts.DataTotal, and nothing is stored.
func TestDataTotalTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts = Timeouts{Command: clientWait, Data: clientWait, DataTotal: 600 * time.Millisecond, Write: clientWait}
	// 40 octets at 100ms each would take 4s: well past DataTotal.
	slowBody := "Subject: slow\r\n\r\nvery slow content here\r\n"
	cutOff := func(t *testing.T, c *client, store *memStore, start time.Time) {
		t.Helper()
		c.expect(timeoutReply)
		c.expectClosed()
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Fatalf("cut off after %v, want about 600ms", d)
		}
		if n := len(store.messages()); n != 0 {
			t.Fatalf("%d messages stored from a cut-off transfer", n)
		}
	}

	t.Run("DATA", func(t *testing.T) {
		store := &memStore{}
		_, addr := startServer(t, cfg, store, nil)
		c := dial(t, addr)
		openTransaction(c)
		c.send("DATA\r\n")
		c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
		start := time.Now()
		slowSender(t, c, slowBody+".\r\n", 100*time.Millisecond)
		cutOff(t, c, store, start)
	})
	t.Run("BDAT chunk", func(t *testing.T) {
		store := &memStore{}
		_, addr := startServer(t, cfg, store, nil)
		c := dial(t, addr)
		openTransaction(c)
		start := time.Now()
		slowSender(t, c, "BDAT 100 LAST\r\n"+slowBody, 100*time.Millisecond)
		cutOff(t, c, store, start)
	})
	t.Run("many small BDAT chunks", func(t *testing.T) {
		store := &memStore{}
		_, addr := startServer(t, cfg, store, nil)
		c := dial(t, addr)
		openTransaction(c)
		start := time.Now()
		// Each chunk and each command arrives quickly; the transfer as a
		// whole does not end within DataTotal.
		for i := 0; i < 40; i++ {
			c.send("BDAT 1\r\nx")
			line := c.expectPrefix("")
			if line == timeoutReply {
				c.expectClosed()
				if d := time.Since(start); d < 500*time.Millisecond {
					t.Fatalf("cut off after %v, want about 600ms", d)
				}
				if n := len(store.messages()); n != 0 {
					t.Fatalf("%d messages stored", n)
				}
				return
			}
			if line != "250 2.0.0 Ok: 1 octets received\r\n" {
				t.Fatalf("chunk %d: got %q", i, line)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("40 chunks over 4s accepted; want a cut-off after 600ms")
	})
	t.Run("bound lifted after the transfer", func(t *testing.T) {
		store := &memStore{}
		_, addr := startServer(t, cfg, store, nil)
		c := dial(t, addr)
		openTransaction(c)
		c.send("DATA\r\n")
		c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
		c.send("Subject: fast\r\n\r\n.\r\n")
		c.expect("250 2.0.0 Ok: queued as ID1\r\n")
		c.expectSilence(900 * time.Millisecond) // past DataTotal, within Command
		c.send("NOOP\r\n")
		c.expect("250 2.0.0 Ok\r\n")
	})
}
