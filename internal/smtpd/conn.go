package smtpd

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// maxCommandLine is the longest command line accepted, CRLF included
// (RFC 5321 §4.5.3.1.4).
const maxCommandLine = smtp.MaxCommandLine

// bufferSize is the size of each connection's pooled read and write buffer.
const bufferSize = 4096

// idleConn is a connection whose reads and writes each get a fresh idle
// deadline (RFC 5321 §4.5.3.2): a client that keeps sending is not cut off,
// one that stalls for the phase's timeout is.
type idleConn struct {
	net.Conn
	mu           sync.Mutex
	readTimeout  time.Duration
	writeTimeout time.Duration
	// readLimit, when not zero, is a deadline no read may pass whatever
	// readTimeout allows: the end of a DATA or BDAT transfer's total time.
	readLimit time.Time
	// interruptible is set while the session waits for a command outside a
	// transaction; Shutdown may then end the wait at once.
	interruptible bool
	interrupted   bool
	// readErr is the last error a read returned.
	readErr error
	// trusted is set for a client that may use the reserved connections
	// (Server.trusted), decided when it connected.
	trusted bool
	// ip is the client's address as the connection limits count it;
	// slotFreed is set (under Server.mu) once its slot is given back.
	ip        string
	slotFreed bool
}

// Read sets the read deadline, then reads.
func (c *idleConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.interruptible && c.interrupted {
		c.mu.Unlock()
		c.readErr = errInterrupted
		return 0, errInterrupted
	}
	deadline := time.Now().Add(c.readTimeout)
	if !c.readLimit.IsZero() && c.readLimit.Before(deadline) {
		deadline = c.readLimit
	}
	err := c.Conn.SetReadDeadline(deadline)
	c.mu.Unlock()
	if err != nil {
		c.readErr = err
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		c.readErr = err
	}
	return n, err
}

// Write sets the write deadline, then writes.
func (c *idleConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// setReadTimeout changes the idle read timeout for the next reads;
// interruptible says whether Shutdown may cut the coming reads short.
func (c *idleConn) setReadTimeout(d time.Duration, interruptible bool) {
	c.mu.Lock()
	c.readTimeout = d
	c.interruptible = interruptible
	c.mu.Unlock()
}

// setReadLimit sets a deadline that no read may pass, however recent the
// last one was; the zero Time removes it.
func (c *idleConn) setReadLimit(t time.Time) {
	c.mu.Lock()
	c.readLimit = t
	c.mu.Unlock()
}

// interrupt marks the connection for shutdown and wakes a read waiting for a
// command outside a transaction.
func (c *idleConn) interrupt() {
	c.mu.Lock()
	c.interrupted = true
	if c.interruptible {
		c.Conn.SetReadDeadline(time.Now())
	}
	c.mu.Unlock()
}

// shuttingDown reports whether interrupt was called.
func (c *idleConn) shuttingDown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.interrupted
}

// clearReadErr forgets a read error the session has dealt with (the
// expected timeout of the pregreet wait), so later checks of readErr see
// only failures of the reads after it.
func (c *idleConn) clearReadErr() { c.readErr = nil }

// timedOut reports whether the last read failed on its deadline.
func (c *idleConn) timedOut() bool {
	return errors.Is(c.readErr, os.ErrDeadlineExceeded) && !errors.Is(c.readErr, errInterrupted)
}

var errInterrupted = errors.New("smtpd: session interrupted by shutdown")

// errLineTooLong reports a command line over maxCommandLine octets; the rest
// of the line has been read and discarded.
var errLineTooLong = errors.New("smtpd: command line too long")

// readCommandLine reads one command line and returns it without its line
// ending. A bare LF ends a command line too (only content is strict).
func readCommandLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if err == nil && len(line) <= maxCommandLine {
		n := len(line) - 1
		if n > 0 && line[n-1] == '\r' {
			n--
		}
		return string(line[:n]), nil
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = r.ReadSlice('\n')
	}
	if err != nil {
		return "", err
	}
	return "", errLineTooLong
}

// bufferPool recycles connections' read and write buffers.
type bufferPool struct {
	readers sync.Pool
	writers sync.Pool
}

func (p *bufferPool) reader(c net.Conn) *bufio.Reader {
	if r, ok := p.readers.Get().(*bufio.Reader); ok {
		r.Reset(c)
		return r
	}
	return bufio.NewReaderSize(c, bufferSize)
}

func (p *bufferPool) writer(c net.Conn) *bufio.Writer {
	if w, ok := p.writers.Get().(*bufio.Writer); ok {
		w.Reset(c)
		return w
	}
	return bufio.NewWriterSize(c, bufferSize)
}

func (p *bufferPool) put(r *bufio.Reader, w *bufio.Writer) {
	r.Reset(nil)
	w.Reset(nil)
	p.readers.Put(r)
	p.writers.Put(w)
}
