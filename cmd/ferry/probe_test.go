package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/testrelay"
)

// probeSink runs "ferry probe" against a sink offering keywords and
// returns what it printed.
func probeSink(t *testing.T, keywords []string) *bytes.Buffer {
	t.Helper()
	s, err := sink.Start(sink.Options{Keywords: keywords})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var out, errOut bytes.Buffer
	if code := run([]string{"probe", "--ehlo", "probe.test", s.Addr()}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	return &out
}

func TestProbeSinkDomino(t *testing.T) {
	out := probeSink(t, []string{"SIZE 10240000", "PIPELINING", "HELP"})
	for _, want := range []string{
		"Greeting:  220 sink.test",
		"PIPELINING:            accepts commands in groups",
		"SIZE 10240000:",
		"STARTTLS:  not offered",
		"8-bit MIME message:                              body=8BITMIME→7BIT converted, DATA, size=10000",
		"553 5.6.7",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "8BITMIME:") {
		t.Errorf("8BITMIME listed although the hop does not offer it:\n%s", out.String())
	}
}

// TestProbeSink8BitMIMEOnly: a hop with 8BITMIME but no BINARYMIME gets a
// binary message converted with BODY=8BITMIME kept.
func TestProbeSink8BitMIMEOnly(t *testing.T) {
	out := probeSink(t, []string{"SIZE 10240000", "8BITMIME", "PIPELINING"})
	for _, want := range []string{
		"8-bit MIME message:                              body=8BITMIME, DATA, size=10000",
		"binary MIME message:                             body=BINARYMIME→8BITMIME converted, DATA, size=10000",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestProbeJSON(t *testing.T) {
	s, err := sink.Start(sink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"probe", "--json", s.Addr()}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep probeReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	var has8 bool
	for _, k := range rep.Keywords {
		if k.Keyword == "8BITMIME" && k.Description == "can receive 8-bit MIME (RFC 6152)" {
			has8 = true
		}
	}
	if !has8 || !rep.ESMTP || len(rep.Plans) != 4 || rep.Plans[0].Plan != "body=8BITMIME, DATA, size=10000" {
		t.Errorf("report = %+v", rep)
	}
	if s.Connections() != 1 || len(s.Messages()) != 0 {
		t.Errorf("probe made %d connections and sent %d messages", s.Connections(), len(s.Messages()))
	}
}

func TestProbeErrors(t *testing.T) {
	addr := testrelay.RefusedAddr(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"probe", "--timeout", "5s", addr}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "Error:") {
		t.Errorf("refused: exit %d, output %q", code, out.String())
	}
	if code := run([]string{"probe"}, &out, &errOut); code != 2 {
		t.Errorf("no argument: exit %d", code)
	}
	if code := run([]string{"probe", "2001:db8::1"}, &out, &errOut); code != 2 {
		t.Errorf("bare IPv6: exit %d", code)
	}
}

// TestProbeTLS runs a minimal STARTTLS server with a certificate made at
// test time and checks the report, verified against a --ca file.
func TestProbeTLS(t *testing.T) {
	cert, caPEM := probeTestCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var conn net.Conn = c
		r, w := bufio.NewReader(conn), conn
		w.Write([]byte("220 tls.test ESMTP\r\n"))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "EHLO") && conn == c:
				w.Write([]byte("250-tls.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"))
			case strings.HasPrefix(cmd, "EHLO"):
				w.Write([]byte("250-tls.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN\r\n"))
			case cmd == "STARTTLS":
				w.Write([]byte("220 go ahead\r\n"))
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
				if tc.Handshake() != nil {
					return
				}
				conn = tc
				r, w = bufio.NewReader(tc), tc
			case cmd == "QUIT":
				w.Write([]byte("221 bye\r\n"))
				return
			default:
				w.Write([]byte("502 no\r\n"))
			}
		}
	}()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"probe", "--ca", caFile, ln.Addr().String()}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"STARTTLS:  TLS 1.3, TLS_", "cert 0: CN=tls.test", "names 127.0.0.1", "verified: yes",
		"EHLO after STARTTLS:", "8BITMIME:", "can receive 8-bit MIME (RFC 6152)", "body=8BITMIME, DATA, smtputf8"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// probeTestCert returns a certificate for the test server and its PEM,
// for --ca.
func probeTestCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	c := testrelay.NewTestCert(t, "tls.test")
	return c.TLS, c.CertPEM
}
