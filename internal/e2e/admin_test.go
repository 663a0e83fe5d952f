package e2e

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// stdoutValue waits for a stdout line starting with prefix (such as
// "ferry serve: admin API on ") and returns the rest of it.
func (r *relay) stdoutValue(t *testing.T, prefix string) string {
	t.Helper()
	var v string
	testrelay.WaitFor(t, "a \""+prefix+"\" line on stdout", func() bool {
		for _, l := range strings.Split(r.Stdout.String(), "\n") {
			if a, ok := strings.CutPrefix(l, prefix); ok {
				v = strings.TrimSpace(a)
				return true
			}
		}
		return false
	})
	return v
}

// TestAdminSocketAndStoppedServer runs "ferry queue" through the built
// binary against the default admin API (a Unix socket in the spool, mode
// 0600), then with the server stopped, on the spool directly: list and
// show work, hold and delete change the spool under its lock, retry and
// bounce are refused, and the restarted server finds the changes.
func TestAdminSocketAndStoppedServer(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0", "--reply", "RCPT:*@busy.example=451 4.2.1 mailbox busy")
	spool := filepath.Join(t.TempDir(), "spool")
	r := startRelay(t, "", spool, routeAll(h.Addr))
	sock := r.stdoutValue(t, "ferry serve: admin API on ")
	if sock != filepath.Join(spool, "admin.sock") {
		t.Fatalf("admin API on %q, want the socket in the spool", sock)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v, want a socket with mode 0600", fi.Mode(), err)
	}
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, testrelay.SendOne(t, r.Addr, sender, []string{"bob@busy.example"}, []byte("Subject: busy\r\n\r\nHello.\r\n")))
		if i == 0 {
			// A one-character prefix, unique while the message is alone,
			// does not change it.
			_, errOut, code := ferry().Run(t, "queue", "--spool", spool, "hold", ids[0][:1])
			if code != 1 || !strings.Contains(errOut, "too short to change a message") {
				t.Errorf("hold with a 1-character prefix: %d %q", code, errOut)
			}
		}
	}
	for _, id := range ids {
		r.WaitLog(t, id, "status=deferred", "451")
	}
	b := ferry()
	out, errOut, code := b.Run(t, "queue", "--spool", spool, "list")
	if code != 0 || !strings.HasPrefix(errOut, "ferry: the server at "+sock+" answers for the spool "+spool) {
		t.Fatalf("queue list: %d %q %q", code, out, errOut)
	}
	for _, want := range append([]string{"bob@busy.example", "said: 451 4.2.1 mailbox busy", "in 3 messages."}, ids...) {
		if !strings.Contains(out, want) {
			t.Errorf("queue list lacks %q (mailq shows each recipient's last reply):\n%s", want, out)
		}
	}

	r.Stop(t)
	if _, err := os.Stat(filepath.Join(spool, "admin.addr")); !os.IsNotExist(err) {
		t.Errorf("admin.addr after shutdown: %v", err)
	}
	out, errOut, code = b.Run(t, "queue", "--spool", spool, "list")
	if code != 0 || !strings.Contains(errOut, "no server runs on the spool "+spool+": working on it directly") || !strings.Contains(out, ids[0]) {
		t.Fatalf("offline list: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := b.Run(t, "queue", "--spool", spool, "show", ids[0]); code != 0 || !strings.Contains(out, "451 4.2.1 mailbox busy") {
		t.Errorf("offline show: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := b.Run(t, "queue", "--spool", spool, "hold", ids[0]); code != 0 || out != ids[0]+": held\n" {
		t.Errorf("offline hold: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := b.RunInput(t, ids[1]+"\n\n", "queue", "--spool", spool, "delete", "-"); code != 0 || out != ids[1]+": deleted\n" {
		t.Errorf("offline delete - (IDs on stdin): %d %q %q", code, out, errOut)
	}
	if _, errOut, code := b.Run(t, "queue", "--spool", spool, "bounce", ids[2]); code != 1 || !strings.Contains(errOut, "needs the running server") {
		t.Errorf("offline bounce: %d %q", code, errOut)
	}
	if _, errOut, code := b.Run(t, "queue", "--spool", spool, "retry", "--all"); code != 1 || !strings.Contains(errOut, "needs the running server") {
		t.Errorf("offline retry: %d %q", code, errOut)
	}

	// The restarted server sees what was done while it was down.
	r2 := startRelay(t, "", spool, routeAll(h.Addr))
	r2.stdoutValue(t, "ferry serve: admin API on ")
	out, errOut, code = b.Run(t, "queue", "--spool", spool, "list", "--json")
	if code != 0 || !strings.Contains(out, `"id": "`+ids[0]+`"`) || !strings.Contains(out, `"held": true`) || strings.Contains(out, ids[1]) || !strings.Contains(out, ids[2]) {
		t.Errorf("list after restart: %d %s %s", code, out, errOut)
	}
	// Bulk forms on the running server: --hop, then --all.
	if out, errOut, code := b.Run(t, "queue", "--spool", spool, "release", "--hop", "busy.example"); code != 0 || !strings.Contains(out, ids[0]+": released") {
		t.Errorf("release --hop: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := b.Run(t, "queue", "--spool", spool, "delete", "--all"); code != 0 || !strings.Contains(out, ids[0]+": deleted") || !strings.Contains(out, ids[2]+": deleted") {
		t.Errorf("delete --all: %d %q %q", code, out, errOut)
	}
	if out, _, code := b.Run(t, "queue", "--spool", spool, "list"); code != 0 || out != "Queue is empty\n" {
		t.Errorf("list after delete --all: %d %q", code, out)
	}
}

// TestAdminTCPNeedsToken checks a TCP admin listener through the binary:
// no token file, or one others can read, stops "ferry serve" with the
// reason; with a private token file requests need the token, a foreign
// Host or Origin is refused, "ferry queue" finds the token through the
// spool, and metrics_listen serves /metrics and /healthz alone, openly.
func TestAdminTCPNeedsToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	b := ferry()
	_, errOut, code := b.Run(t, "serve", "--listen", "127.0.0.1:0", "--spool", spool, "--admin", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "needs admin.token_file") {
		t.Errorf("TCP admin without a token: %d %q", code, errOut)
	}
	tokenFile := filepath.Join(dir, "admin.token")
	const token = "e2e-token-0123456789abcdef"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tokenFile, 0o644)
	_, errOut, code = b.Run(t, "serve", "--listen", "127.0.0.1:0", "--spool", spool, "--admin", "127.0.0.1:0", "--admin-token-file", tokenFile)
	if code != 1 || !strings.Contains(errOut, "mode 0644 lets its group or others read it") {
		t.Errorf("TCP admin with a world-readable token: %d %q", code, errOut)
	}
	os.Chmod(tokenFile, 0o600)

	conf := "[admin]\naddress = \"127.0.0.1:0\"\ntoken_file = \"" + tokenFile + "\"\nmetrics_listen = \"127.0.0.1:0\"\n"
	r := startRelay(t, conf, spool)
	addr := r.stdoutValue(t, "ferry serve: admin API on ")
	metrics := r.stdoutValue(t, "ferry serve: metrics on ")
	hc := &http.Client{Timeout: testrelay.WaitLimit}
	auth := map[string]string{"Authorization": "Bearer " + token}
	for _, tc := range []struct {
		name   string
		url    string
		header map[string]string
		want   int
	}{
		{"no token", "http://" + addr + "/queue", nil, 401},
		{"token", "http://" + addr + "/queue", auth, 200},
		{"rebinding Host", "http://" + addr + "/queue", map[string]string{"Authorization": "Bearer " + token, "Host": "evil.example:" + port(addr)}, 403},
		{"foreign Origin", "http://" + addr + "/queue", map[string]string{"Authorization": "Bearer " + token, "Origin": "http://evil.example"}, 403},
		{"metrics without token", "http://" + metrics + "/metrics", nil, 200},
		{"healthz without token", "http://" + metrics + "/healthz", nil, 200},
		{"no queue on the metrics listener", "http://" + metrics + "/queue", nil, 404},
	} {
		if got, body := testrelay.HTTPRequest(t, hc, http.MethodGet, tc.url, tc.header, ""); got != tc.want {
			t.Errorf("%s: GET %s = %d %s, want %d", tc.name, tc.url, got, body, tc.want)
		}
	}
	out, errOut, code := b.Run(t, "queue", "--spool", spool, "list")
	if code != 0 || out != "Queue is empty\n" || !strings.Contains(errOut, "the server at "+addr+" answers") {
		t.Errorf("queue list over TCP: %d %q %q", code, out, errOut)
	}
}

// port returns the port of "host:port".
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestConfigFromEnvironment checks that FERRY_CONFIG names the file both
// "ferry serve" and the admin commands read, so "ferry queue list" needs
// no --config (as /etc/ferry/ferry.toml on an installed host).
func TestConfigFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	conf := filepath.Join(dir, "ferry.toml")
	text := "hostname = \"env.test\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\n\n[queue]\nspool = \"" + spool + "\"\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	b := ferry()
	b.Env = []string{"FERRY_CONFIG=" + conf}
	r := b.Start(t, "serve", "serve")
	c := testrelay.Dial(t, r.Addr)
	c.Quit()
	if !strings.Contains(c.EHLO.String(), "env.test") {
		t.Errorf("EHLO reply %q: the FERRY_CONFIG file was not read", c.EHLO)
	}
	out, errOut, code := b.Run(t, "queue", "list")
	if code != 0 || out != "Queue is empty\n" || !strings.Contains(errOut, "answers for the spool "+spool) {
		t.Errorf("queue list with FERRY_CONFIG: %d %q %q", code, out, errOut)
	}
	b.Env = []string{"FERRY_CONFIG=" + filepath.Join(dir, "missing.toml")}
	if _, errOut, code := b.Run(t, "queue", "list"); code != 1 || !strings.Contains(errOut, "FERRY_CONFIG=") {
		t.Errorf("missing FERRY_CONFIG file: %d %q", code, errOut)
	}
}
