package smtpd

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzSession feeds arbitrary client input to a session: it must end (no
// hang, no panic) once the client closes, and store at most one message per
// DATA or BDAT in the input.
func FuzzSession(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"))
	f.Add([]byte("HELO x\r\n"))
	f.Add([]byte("EHLO x\r\n"))
	f.Add([]byte("MAIL FROM:<a@b.example> SIZE=10\r\nBDAT 3 LAST\r\nabc"))
	f.Add([]byte("DATA\r\nx\n.\nMAIL FROM:<e@f>\r\n.\r\nQUIT\r\n"))
	f.Add([]byte("EHLO x\r\nAUTH LOGIN\r\nYm9i\r\naHVudGVyMg==\r\nMAIL FROM:<a@b.example> AUTH=bob\r\n"))
	f.Add([]byte("EHLO x\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN AGJvYgBodW50ZXIy\r\nAUTH PLAIN =\r\n"))
	f.Fuzz(func(t *testing.T, input []byte) {
		cfg := testConfig()
		cfg.Timeouts = Timeouts{Command: 2 * time.Second, Data: 2 * time.Second, Write: 2 * time.Second}
		cfg.MaxMessageSize = 1 << 16
		cfg.Auth = testUsers{"bob": "hunter2"}
		cfg.AllowInsecureAuth = true
		cfg.AuthFailureDelay = -1
		store := &memStore{}
		srv := New(cfg, store, nil)
		cli, conn := net.Pipe()
		srv.admit(conn)
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, cli)
			close(drained)
		}()
		// Send line by line so that pipelining checks see separate packets
		// as often as a single one.
		cli.SetWriteDeadline(time.Now().Add(3 * time.Second))
		for _, part := range bytes.SplitAfter(input, []byte("\n")) {
			if _, err := cli.Write(part); err != nil {
				break
			}
		}
		cli.Close()
		done := make(chan struct{})
		go func() {
			srv.active.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(clientWait):
			t.Fatal("session did not end after the client closed")
		}
		<-drained
		upper := bytes.ToUpper(input)
		if n, max := len(store.messages()), bytes.Count(upper, []byte("DATA"))+bytes.Count(upper, []byte("BDAT")); n > max {
			t.Fatalf("%d messages stored from input with %d DATA/BDAT", n, max)
		}
	})
}
