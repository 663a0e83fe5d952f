package smtp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDataOverSocket runs the DATA writer and reader over a loopback TCP
// connection: the content arrives in small pieces, the command pipelined
// after the data stays unread, and a read deadline surfaces as a wrapped
// os.ErrDeadlineExceeded (the server's cue for 421 4.4.2).
func TestDataOverSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	body := strings.Repeat("line\r\n.dot line\r\n", 200) + "last"
	sent := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			sent <- err
			return
		}
		defer c.Close()
		w := NewDataWriter(pieceWriter{c, 7})
		if _, err := io.WriteString(w, body); err != nil {
			sent <- err
			return
		}
		if err := w.Close(); err != nil {
			sent <- err
			return
		}
		_, err = io.WriteString(c, "QUIT\r\n")
		sent <- err
		// Keep the connection open and silent until the server is done.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 1))
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	got, err := io.ReadAll(NewDataReader(br, DataOptions{Bare: BareReject}))
	if err != nil || string(got) != canonical(body) {
		t.Fatalf("read %d octets, %v", len(got), err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "QUIT\r\n" {
		t.Fatalf("next command %q, %v", line, err)
	}
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = io.ReadAll(NewDataReader(br, DataOptions{}))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle client: err = %v, want a deadline error", err)
	}
}

// pieceWriter writes to w in pieces of at most n octets.
type pieceWriter struct {
	w io.Writer
	n int
}

func (p pieceWriter) Write(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		k := min(p.n, len(b))
		m, err := p.w.Write(b[:k])
		total += m
		if err != nil {
			return total, err
		}
		b = b[k:]
	}
	return total, nil
}
