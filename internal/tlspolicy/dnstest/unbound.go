package dnstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// SignZone signs a zone (text with an SOA for origin) with a fresh ECDSA
// P-256 key made by ldns-keygen, using ldns-signzone (NSEC denial), and
// returns the signed zone text and the key's DNSKEY record, the trust
// anchor. The test is skipped when the ldns tools are missing (.ci/run
// installs ldnsutils).
func SignZone(t testing.TB, origin, text string) (signed, anchor string) {
	t.Helper()
	for _, tool := range []string{"ldns-keygen", "ldns-signzone"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("dnstest: %s not installed (Debian ldnsutils; .ci/run installs it): %v", tool, err)
		}
	}
	dir := t.TempDir()
	zf := filepath.Join(dir, "zone")
	if err := os.WriteFile(zf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", dns.Fqdn(origin))
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ldns-keygen: %v: %s", err, stderrOf(err))
	}
	base := strings.TrimSpace(string(out))
	cmd = exec.Command("ldns-signzone", "-o", dns.Fqdn(origin), "-f", zf+".signed", zf, base)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldns-signzone: %v: %s", err, out)
	}
	s, err := os.ReadFile(zf + ".signed")
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(filepath.Join(dir, base+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return string(s), strings.TrimSpace(string(k))
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// Unbound is a private unbound validating resolver on loopback.
type Unbound struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Log is the path of unbound's log file, for failure messages.
	Log string
}

// StartUnbound starts unbound on a free loopback port, validating with the
// trust anchors given (DNSKEY records) and sending the queries for each
// stub zone to auth. It never uses the system unbound's configuration,
// root hints or trust anchors. The test is skipped when unbound is not
// installed (.ci/run installs it).
func StartUnbound(t testing.TB, auth string, stubZones, anchors []string) *Unbound {
	t.Helper()
	bin, err := exec.LookPath("unbound")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/unbound"); err != nil {
			t.Skipf("dnstest: unbound not installed (.ci/run installs it): %v", err)
		}
	}
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(auth)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		u := &Unbound{Addr: net.JoinHostPort("127.0.0.1", fmt.Sprint(p)), Log: filepath.Join(dir, "unbound.log")}
		var conf bytes.Buffer
		fmt.Fprintf(&conf, `server:
	interface: 127.0.0.1
	port: %d
	do-ip6: no
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "%s"
	pidfile: "%s"
	logfile: "%s"
	use-syslog: no
	verbosity: 1
	val-log-level: 2
	do-not-query-localhost: no
	qname-minimisation: no
	aggressive-nsec: no
	module-config: "validator iterator"
	access-control: 127.0.0.0/8 allow
	num-threads: 1
	so-reuseport: no
	harden-dnssec-stripped: yes
	cache-max-ttl: 1
	cache-max-negative-ttl: 1
	# RFC 6761 names unbound serves itself by default: the tests use them.
	local-zone: "test." nodefault
	local-zone: "localhost." nodefault
`, p, dir, filepath.Join(dir, "unbound.pid"), u.Log)
		for _, a := range anchors {
			fmt.Fprintf(&conf, "\ttrust-anchor: \"%s\"\n", strings.Join(strings.Fields(a), " "))
		}
		// The root goes to auth too (which refuses what it does not
		// serve), so no query ever leaves the machine.
		for _, z := range append([]string{"."}, stubZones...) {
			fmt.Fprintf(&conf, "stub-zone:\n\tname: \"%s\"\n\tstub-addr: %s@%s\n", dns.Fqdn(z), host, port)
		}
		cf := filepath.Join(dir, "unbound.conf")
		if err := os.WriteFile(cf, conf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-d", "-c", cf)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting unbound: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitReady(u.Addr, exited); err != nil {
			_ = cmd.Process.Kill()
			log, _ := os.ReadFile(u.Log)
			lastErr = fmt.Errorf("unbound did not start: %v\n%s\n%s", err, stderr.String(), log)
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		return u
	}
	t.Fatal(lastErr)
	return nil
}

// freePort returns a loopback port free for UDP and TCP just now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	p := ln.Addr().(*net.TCPAddr).Port
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return 0, err
	}
	pc.Close()
	return p, nil
}

// waitReady asks unbound for its version until it answers, it exits, or
// 60 seconds pass.
func waitReady(addr string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	q := new(dns.Msg)
	q.SetQuestion("version.server.", dns.TypeTXT)
	q.Question[0].Qclass = dns.ClassCHAOS
	c := &dns.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("unbound exited: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _, err := c.ExchangeContext(ctx, q, addr)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("unbound exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer from %s in 60s", addr)
}
