package smtpd

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// recordingPolicy accepts everything and records the senders it saw.
type recordingPolicy struct {
	AcceptAll
	mu    sync.Mutex
	froms []string
}

func (p *recordingPolicy) Mail(_ SessionInfo, from smtp.Path, _ smtp.Params) *Refusal {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.froms = append(p.froms, from.Address())
	return nil
}

func TestSmuggling(t *testing.T) {
	variants := []struct{ name, eod string }{
		{"LF.LF", "\n.\n"},
		{"LF.CRLF", "\n.\r\n"},
		{"CRLF.LF", "\r\n.\n"},
		{"CR.CR", "\r.\r"},
		{"CR.CRLF", "\r.\r\n"},
		{"CRLF.CR", "\r\n.\r"},
	}
	const smuggled = "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled text\r\n"
	for _, v := range variants {
		for _, policy := range []smtp.BarePolicy{smtp.BareNormalize, smtp.BareReject} {
			name := v.name + "/normalize"
			if policy == smtp.BareReject {
				name = v.name + "/reject"
			}
			t.Run(name, func(t *testing.T) {
				cfg := testConfig()
				cfg.BareNewline = policy
				store := &memStore{}
				pol := &recordingPolicy{}
				_, addr := startServer(t, cfg, store, pol)
				c := dial(t, addr)
				openTransaction(c)
				c.send("DATA\r\n")
				c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
				c.send("Subject: real\r\n\r\nreal body" + v.eod + smuggled + ".\r\n")
				if policy == smtp.BareNormalize {
					c.expect("250 2.0.0 Ok: queued as ID1\r\n")
				} else {
					c.expect("550 5.5.2 Error: bare <CR> or <LF> received\r\n")
				}
				c.send("QUIT\r\n")
				c.expect("221 2.0.0 Bye\r\n")
				c.expectClosed()
				msgs := store.messages()
				if policy == smtp.BareReject {
					if len(msgs) != 0 {
						t.Fatalf("%d messages stored, want 0", len(msgs))
					}
				} else {
					if len(msgs) != 1 {
						t.Fatalf("%d messages stored, want 1", len(msgs))
					}
					if !bytes.Contains(msgs[0].body, []byte("MAIL FROM:<evil@attacker.example>")) ||
						!bytes.Contains(msgs[0].body, []byte("smuggled text")) {
						t.Fatalf("stored content lacks the smuggled text: %q", msgs[0].body)
					}
				}
				pol.mu.Lock()
				defer pol.mu.Unlock()
				if len(pol.froms) != 1 || pol.froms[0] != "a@example.com" {
					t.Fatalf("MAIL commands executed: %q", pol.froms)
				}
			})
		}
	}
}

func TestTimeouts(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts = Timeouts{Command: time.Second, Data: time.Second, Write: 2 * time.Second}
	t.Run("idle command", func(t *testing.T) {
		_, addr := startServer(t, cfg, &memStore{}, nil)
		c := dial(t, addr)
		c.expectPrefix("220 ")
		start := time.Now()
		c.expect("421 4.4.2 mx.test Error: timeout exceeded\r\n")
		c.expectClosed()
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("idle in transaction", func(t *testing.T) {
		_, addr := startServer(t, cfg, &memStore{}, nil)
		c := dial(t, addr)
		openTransaction(c)
		c.expect("421 4.4.2 mx.test Error: timeout exceeded\r\n")
		c.expectClosed()
	})
	t.Run("idle mid-DATA", func(t *testing.T) {
		store := &memStore{}
		_, addr := startServer(t, cfg, store, nil)
		c := dial(t, addr)
		openTransaction(c)
		c.send("DATA\r\n")
		c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
		c.send("Subject: x\r\n\r\npart")
		c.expect("421 4.4.2 mx.test Error: timeout exceeded\r\n")
		c.expectClosed()
		if len(store.messages()) != 0 {
			t.Fatal("partial message stored")
		}
	})
	t.Run("idle mid-BDAT", func(t *testing.T) {
		_, addr := startServer(t, cfg, &memStore{}, nil)
		c := dial(t, addr)
		openTransaction(c)
		c.send("BDAT 100 LAST\r\npart")
		c.expect("421 4.4.2 mx.test Error: timeout exceeded\r\n")
		c.expectClosed()
	})
	t.Run("slow client", func(t *testing.T) {
		store := &memStore{}
		_, addr := startServer(t, cfg, store, nil)
		c := dial(t, addr)
		openTransaction(c)
		// Each byte well within the idle timeout, the whole well beyond it.
		slow := func(s string) {
			for i := 0; i < len(s); i++ {
				c.send(s[i : i+1])
				time.Sleep(100 * time.Millisecond)
			}
		}
		slow("NOOP\r\n")
		c.expect("250 2.0.0 Ok\r\n")
		c.send("DATA\r\n")
		c.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
		slow("Subject: slow\r\n\r\n.\r\n")
		c.expect("250 2.0.0 Ok: queued as ID1\r\n")
		if len(store.messages()) != 1 {
			t.Fatal("message not stored")
		}
	})
}

func TestShutdown(t *testing.T) {
	t.Run("graceful", func(t *testing.T) {
		store := &memStore{}
		srv, addr := startServer(t, testConfig(), store, nil)
		busy, idle := dial(t, addr), dial(t, addr)
		idle.expectPrefix("220 ")
		openTransaction(busy)
		busy.send("DATA\r\n")
		busy.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
		busy.send("Subject: in flight\r\n\r\n")
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), clientWait)
			defer cancel()
			done <- srv.Shutdown(ctx)
		}()
		idle.expect("421 4.3.2 mx.test Service shutting down, closing transmission channel\r\n")
		idle.expectClosed()
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a transfer in progress", err)
		case <-time.After(100 * time.Millisecond):
		}
		busy.send("body\r\n.\r\n")
		busy.expect("250 2.0.0 Ok: queued as ID1\r\n421 4.3.2 mx.test Service shutting down, closing transmission channel\r\n")
		busy.expectClosed()
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if len(store.messages()) != 1 {
			t.Fatal("message in flight not stored")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		store := &memStore{}
		srv, addr := startServer(t, testConfig(), store, nil)
		busy := dial(t, addr)
		openTransaction(busy)
		busy.send("DATA\r\n")
		busy.expect("354 End data with <CR><LF>.<CR><LF>\r\n")
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := srv.Shutdown(ctx); err == nil {
			t.Fatal("Shutdown returned nil with a stuck transfer")
		}
		busy.expectClosed()
	})
}
