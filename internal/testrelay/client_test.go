package testrelay

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func TestDotStuff(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ".\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{"a", "a\r\n.\r\n"},
		{".\r\n..x\r\nb.\r\n", "..\r\n...x\r\nb.\r\n.\r\n"},
	} {
		if got := string(DotStuff([]byte(tc.in))); got != tc.want {
			t.Errorf("DotStuff(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if BodyParam([]byte("caf\xe9")) != "BODY=8BITMIME" || BodyParam([]byte("cafe")) != "" {
		t.Error("BodyParam does not follow the content's octets")
	}
}

// scriptedServer accepts one connection on loopback, answers each line it
// reads with the next reply of replies (after a greeting), and sends what
// it read on the returned channel when the client hangs up.
func scriptedServer(t *testing.T, greeting string, replies map[string]string) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	got := make(chan string, 1)
	go func() {
		var seen strings.Builder
		defer func() { got <- seen.String() }()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(StepTimeout))
		r := bufio.NewReader(conn)
		_, _ = conn.Write([]byte(greeting))
		inData := false
		for range 100 {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			seen.WriteString(line)
			key := strings.Fields(line + " x")[0]
			if inData {
				if line != ".\r\n" {
					continue
				}
				inData, key = false, "."
			}
			inData = key == "DATA"
			_, _ = conn.Write([]byte(replies[key]))
		}
	}()
	return ln.Addr().String(), got
}

func TestClientSession(t *testing.T) {
	addr, got := scriptedServer(t, "220 hop.test ESMTP\r\n", map[string]string{
		"EHLO": "250-hop.test\r\n250-8BITMIME\r\n250 SIZE 1000\r\n",
		"MAIL": "250 2.1.0 Ok\r\n",
		"RCPT": "250 2.1.5 Ok\r\n",
		"DATA": "354 go ahead\r\n",
		".":    "250 2.0.0 Ok: queued as ABC123\r\n",
		"QUIT": "221 2.0.0 Bye\r\n",
	})
	id := SendOne(t, addr, "a@example.net", []string{"b@example.org", "c@example.org"}, []byte("Subject: caf\xe9\r\n\r\n.hi\r\n"))
	if id != "ABC123" {
		t.Errorf("queue ID %q, want ABC123", id)
	}
	want := "EHLO client.test\r\nMAIL FROM:<a@example.net> BODY=8BITMIME\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n" +
		"Subject: caf\xe9\r\n\r\n..hi\r\n.\r\nQUIT\r\n"
	select {
	case s := <-got:
		if s != want {
			t.Errorf("server read %q, want %q", s, want)
		}
	case <-time.After(StepTimeout):
		t.Fatal("the scripted server did not finish")
	}
}

func TestClientReadsMultilineEHLO(t *testing.T) {
	addr, _ := scriptedServer(t, "220 hop.test\r\n", map[string]string{
		"EHLO": "250-hop.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
	})
	c := Dial(t, addr)
	if c.EHLO.Code != 250 || len(c.EHLO.Lines) != 3 || c.EHLO.Lines[2] != "8BITMIME" {
		t.Errorf("EHLO reply %v", c.EHLO)
	}
	if s := c.EHLO.String(); s != "250 hop.test / 250 PIPELINING / 250 8BITMIME" {
		t.Errorf("String() = %q", s)
	}
	if s := c.EHLO.Text(); s != "hop.test PIPELINING 8BITMIME" {
		t.Errorf("Text() = %q", s)
	}
}
