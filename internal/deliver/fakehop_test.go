package deliver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// fakeHop is a scripted SMTP server on 127.0.0.1 that plays a next hop:
// chosen greeting and EHLO keywords, scripted replies per command, and
// capture of everything the client sent.
type fakeHop struct {
	t        *testing.T
	ln       net.Listener
	greeting string   // default "220 hop.test ESMTP"
	keywords []string // EHLO keywords; nil → HELO only when ehloRefused
	// ehloRefused makes EHLO fail with 502 (an SMTP-only server).
	ehloRefused bool
	tlsConfig   *tls.Config // enables STARTTLS when set and keywords list it
	// script returns the reply line(s) for a command, or "" for the
	// default. n counts commands with the same verb on the connection
	// (1-based); conn counts connections (1-based). Returning "DROP"
	// closes the connection without a reply.
	script func(verb, arg string, n, conn int) string

	mu       sync.Mutex
	conns    int
	raw      bytes.Buffer // every byte received, in order, all connections
	messages [][]byte     // content of each DATA/BDAT transfer as on the wire
	commands []string     // every command line
	wg       sync.WaitGroup
}

func newFakeHop(t *testing.T, keywords ...string) *fakeHop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHop{t: t, ln: ln, greeting: "220 hop.test ESMTP", keywords: keywords}
	t.Cleanup(func() {
		ln.Close()
		h.wg.Wait()
	})
	return h
}

// start begins accepting; call after setting the fields.
func (h *fakeHop) start() *fakeHop {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := h.ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns++
			n := h.conns
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				h.serve(c, n)
			}()
		}
	}()
	return h
}

func (h *fakeHop) target() route.Target {
	ap := netip.MustParseAddrPort(h.ln.Addr().String())
	return route.Target{Host: "127.0.0.1", IP: ap.Addr(), Port: int(ap.Port())}
}

func (h *fakeHop) route() route.Route {
	return route.Route{Pattern: "*", Hops: []route.NextHop{{Host: "127.0.0.1", Port: h.target().Port, NoMX: true}}}
}

// captureReader records every byte read.
type captureReader struct {
	r io.Reader
	h *fakeHop
}

func (c captureReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.mu.Lock()
	c.h.raw.Write(p[:n])
	c.h.mu.Unlock()
	return n, err
}

func (h *fakeHop) serve(c net.Conn, connNo int) {
	br := bufio.NewReader(captureReader{r: c, h: h})
	w := bufio.NewWriter(c)
	send := func(s string) bool {
		if _, err := w.WriteString(strings.ReplaceAll(s, "\n", "\r\n") + "\r\n"); err != nil {
			return false
		}
		return w.Flush() == nil
	}
	if !send(h.greeting) || !strings.HasPrefix(h.greeting, "220") {
		return
	}
	counts := map[string]int{}
	tlsOn := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		h.mu.Lock()
		h.commands = append(h.commands, line)
		h.mu.Unlock()
		counts[verb]++
		if h.script != nil {
			if r := h.script(verb, arg, counts[verb], connNo); r != "" {
				if r == "DROP" {
					return
				}
				if verb == "BDAT" {
					size, _ := strconv.Atoi(strings.Fields(arg)[0])
					if _, err := io.CopyN(io.Discard, br, int64(size)); err != nil {
						return
					}
				}
				if !send(r) || strings.HasPrefix(r, "421") {
					return
				}
				if verb == "DATA" && strings.HasPrefix(r, "354") {
					if _, ok := h.readData(br); !ok {
						return
					}
					if !send(h.endReply(counts, connNo)) {
						return
					}
				}
				continue
			}
		}
		switch verb {
		case "EHLO":
			if h.ehloRefused {
				send("502 5.5.1 Command not implemented")
				continue
			}
			lines := []string{"250-hop.test"}
			for _, k := range h.keywords {
				if k == "STARTTLS" && (tlsOn || h.tlsConfig == nil) {
					continue
				}
				lines = append(lines, "250-"+k)
			}
			lines[len(lines)-1] = "250 " + lines[len(lines)-1][4:]
			send(strings.Join(lines, "\n"))
		case "HELO":
			send("250 hop.test")
		case "STARTTLS":
			if h.tlsConfig == nil || tlsOn {
				send("502 5.5.1 no")
				continue
			}
			send("220 2.0.0 Ready to start TLS")
			tc := tls.Server(c, h.tlsConfig)
			if err := tc.Handshake(); err != nil {
				return
			}
			tlsOn = true
			br = bufio.NewReader(captureReader{r: tc, h: h})
			w = bufio.NewWriter(tc)
		case "AUTH":
			send("235 2.7.0 Authentication successful")
		case "MAIL", "RCPT", "RSET", "NOOP":
			send("250 2.0.0 Ok")
		case "DATA":
			send("354 End data with <CR><LF>.<CR><LF>")
			if _, ok := h.readData(br); !ok {
				return
			}
			send(h.endReply(counts, connNo))
		case "BDAT":
			f := strings.Fields(arg)
			size, _ := strconv.Atoi(f[0])
			buf := make([]byte, size)
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			h.mu.Lock()
			if counts["BDAT"] == 1 || len(h.messages) == 0 {
				h.messages = append(h.messages, nil)
			}
			h.messages[len(h.messages)-1] = append(h.messages[len(h.messages)-1], buf...)
			h.mu.Unlock()
			if len(f) > 1 && strings.EqualFold(f[1], "LAST") {
				counts["BDAT"] = 0
				send("250 2.0.0 Ok: queued")
			} else {
				send("250 2.0.0 Ok: chunk received")
			}
		case "QUIT":
			send("221 2.0.0 Bye")
			return
		default:
			send("500 5.5.2 Unknown command")
		}
	}
}

// endReply is the reply to the end of data: the script's answer to the
// pseudo-verb "." or "250 2.0.0 Ok: queued".
func (h *fakeHop) endReply(counts map[string]int, connNo int) string {
	counts["."]++
	if h.script != nil {
		if r := h.script(".", "", counts["."], connNo); r != "" {
			return r
		}
	}
	return "250 2.0.0 Ok: queued"
}

// readData reads DATA content through the terminating dot line and keeps
// it as sent (dot-stuffed).
func (h *fakeHop) readData(br *bufio.Reader) ([]byte, bool) {
	var msg []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return nil, false
		}
		if string(line) == ".\r\n" {
			break
		}
		msg = append(msg, line...)
	}
	h.mu.Lock()
	h.messages = append(h.messages, msg)
	h.mu.Unlock()
	return msg, true
}

func (h *fakeHop) snapshot() (raw []byte, msgs [][]byte, cmds []string, conns int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return bytes.Clone(h.raw.Bytes()), append([][]byte(nil), h.messages...), append([]string(nil), h.commands...), h.conns
}

// mailCommands returns the MAIL commands among cmds.
func mailCommands(cmds []string) []string {
	var mails []string
	for _, c := range cmds {
		if strings.HasPrefix(c, "MAIL") {
			mails = append(mails, c)
		}
	}
	return mails
}

// testCerts makes a certificate for hop.test and 127.0.0.1 at test time
// and a pool that trusts it.
func testCerts(t *testing.T) (server tls.Certificate, roots *x509.CertPool) {
	t.Helper()
	c := testrelay.NewTestCert(t, "hop.test", "hop.test")
	return c.TLS, c.Roots
}

// hasHigh reports the offset of the first octet > 127, or -1.
func hasHigh(b []byte) int {
	for i, c := range b {
		if c > 127 {
			return i
		}
	}
	return -1
}

func (h *fakeHop) String() string { return fmt.Sprintf("fakeHop(%s)", h.ln.Addr()) }
