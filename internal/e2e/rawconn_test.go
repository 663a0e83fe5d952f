package e2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// rawConn is a connection for hostile clients: every method returns an
// error instead of failing the test, so it can run in plain goroutines.
type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialFrom connects to addr from the loopback address src (any of
// 127.0.0.0/8, so each hostile client has its own per-IP limits) with
// every read and write bounded by deadline.
func dialFrom(src, addr string, deadline time.Time) (*rawConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: testrelay.StepTimeout}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, src, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	return &rawConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}, nil
}

// send writes s in one write.
func (c *rawConn) send(s string) error {
	if _, err := c.conn.Write([]byte(s)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// readReply reads one reply; enhanced code and text stay in lines.
func (c *rawConn) readReply() (testrelay.Reply, error) {
	var r testrelay.Reply
	for n := 0; n < 100; n++ {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return r, fmt.Errorf("reading reply (so far %v): %w", r, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return r, fmt.Errorf("short reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			return r, fmt.Errorf("reply line %q has no reply code", line)
		}
		if n > 0 && code != r.Code {
			return r, fmt.Errorf("reply line %q inside a %d reply", line, r.Code)
		}
		r.Code = code
		if len(line) == 3 {
			r.Lines = append(r.Lines, "")
			return r, nil
		}
		r.Lines = append(r.Lines, line[4:])
		if line[3] == ' ' {
			return r, nil
		}
		if line[3] != '-' {
			return r, fmt.Errorf("reply line %q", line)
		}
	}
	return r, errors.New("reply longer than 100 lines")
}

// expect reads one reply and checks its code and the start of its text
// (the enhanced code, say "5.5.2"; "" for any).
func (c *rawConn) expect(code int, prefix string) (testrelay.Reply, error) {
	r, err := c.readReply()
	if err != nil {
		return r, err
	}
	if r.Code != code || !strings.HasPrefix(r.Text(), prefix) {
		return r, fmt.Errorf("got %v, want %d %s", r, code, prefix)
	}
	return r, nil
}

// cmd sends one command line and checks the reply as expect does.
func (c *rawConn) cmd(line string, code int, prefix string) error {
	if err := c.send(line + "\r\n"); err != nil {
		return err
	}
	if _, err := c.expect(code, prefix); err != nil {
		return fmt.Errorf("%.40q: %w", line, err)
	}
	return nil
}

// step is one command of a scripted session and the reply it must get:
// its code and the start of its text (the enhanced code; "" for any).
type step struct {
	line   string
	code   int
	prefix string
}

// run sends each step's command in turn and checks its reply as cmd does,
// stopping at the first failure.
func (c *rawConn) run(steps ...step) error {
	for _, s := range steps {
		if err := c.cmd(s.line, s.code, s.prefix); err != nil {
			return err
		}
	}
	return nil
}

// expectClosed reads until the server closes the connection, failing on
// anything more than junk octets (up to max). A reset counts as closed: a
// server that closes with the client's input unread makes the kernel send
// RST instead of FIN.
func (c *rawConn) expectClosed(max int64) error {
	n, err := io.Copy(io.Discard, io.LimitReader(c.r, max+1))
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("waiting for the server to close: %w", err)
	}
	if n > max {
		return fmt.Errorf("server still talking after %d octets", n)
	}
	return nil
}

// greet reads the 220 greeting and sends EHLO.
func (c *rawConn) greet() error {
	if _, err := c.expect(220, ""); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if err := c.send("EHLO hostile.test\r\n"); err != nil {
		return err
	}
	if _, err := c.expect(250, ""); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	return nil
}

// clientHello returns the octets of a real TLS ClientHello, as a client
// that wrongly starts TLS on a plain SMTP port would send them.
func clientHello() ([]byte, error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{ServerName: "relay.test", MinVersion: tls.VersionTLS12}).Handshake()
	b.SetReadDeadline(time.Now().Add(testrelay.StepTimeout))
	buf := make([]byte, 8<<10)
	n, err := b.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("capturing a ClientHello: %w", err)
	}
	if n < 6 || buf[0] != 0x16 || buf[5] != 0x01 {
		return nil, fmt.Errorf("captured %d octets that are not a ClientHello record", n)
	}
	return buf[:n], nil
}
