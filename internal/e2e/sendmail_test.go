package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// sendmailRelay runs "ferry serve" with a configuration file whose only
// listener is on a free port, as an installed relay has one: "ferry
// sendmail -C FILE" must find the listener there. It returns the relay
// and the file.
func sendmailRelay(t *testing.T, h *hop, extra string) (*relay, string) {
	t.Helper()
	conf := "hostname = \"" + relayHostname + "\"\n\n[[listener]]\naddress = \"" + freePort(t) + "\"\n" + extra
	file := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(t.TempDir(), "spool")
	p := ferry().Start(t, "serve", "serve", "--config", file, "--spool", spool, "--route", routeAll(h.Addr))
	return &relay{Proc: p, spool: spool}, file
}

// TestSendmail submits messages through "ferry sendmail" and through a
// link named "sendmail" to the binary, and finds them at the next hop:
// recipients from the command line or (with -t) from the header, Bcc:
// removed, From:, Date: and Message-ID: added when missing, a lone "."
// kept with -oi; refusals give the exit statuses of sysexits.h and queue
// nothing.
func TestSendmail(t *testing.T) {
	t.Parallel()
	h := startSink(t, "127.0.0.1:0")
	r, conf := sendmailRelay(t, h, "\n[relay]\nnetworks = [\"192.0.2.0/24\"]\naccept_domains = [\"example.com\"]\n")

	// ferry sendmail with a recipient argument; -oi keeps the lone dot.
	msg := "From: Cron Daemon <cron@relay.test>\nSubject: nightly\n\nline one\n.\nline after the dot\n"
	out, errOut, code := ferry().RunWith(t, "", []byte(msg), "sendmail", "-C", conf, "-f", "cron@relay.test", "-oi", "ops@example.com")
	if code != 0 {
		t.Fatalf("ferry sendmail: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	caps := h.waitCaptures(t, 1)
	if got := caps[0].sc.From; got != "<cron@relay.test>" {
		t.Errorf("envelope sender %s, want <cron@relay.test>", got)
	}
	if got := rcptList(caps[0]); got != "<ops@example.com>" {
		t.Errorf("recipients %s, want <ops@example.com>", got)
	}
	body := string(caps[0].data)
	for _, want := range []string{"Subject: nightly\r\n", "\r\nline one\r\n.\r\nline after the dot\r\n", "\r\nDate: ", "\r\nMessage-ID: <"} {
		if !strings.Contains(body, want) {
			t.Errorf("the message at the hop lacks %q:\n%s", want, body)
		}
	}

	// A link named sendmail, with -t: the recipients come from To: and
	// Bcc:, Bcc: is removed and From: is added.
	link := filepath.Join(t.TempDir(), "sendmail")
	if err := os.Symlink(ferry().Path, link); err != nil {
		t.Fatal(err)
	}
	msg = "To: Alice <alice@example.com>\nBcc: hidden@example.com\nSubject: from php\n\nhello\n.\nnot sent\n"
	if out, errOut, code := ferry().RunWith(t, link, []byte(msg), "-t", "-C", conf, "-F", "Web Site"); code != 0 {
		t.Fatalf("sendmail -t: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	caps = h.waitCaptures(t, 2)
	second := caps[1]
	if got := rcptList(second); got != "<alice@example.com>,<hidden@example.com>" {
		t.Errorf("recipients %s, want alice and hidden", got)
	}
	body = string(second.data)
	if strings.Contains(body, "Bcc:") || strings.Contains(body, "hidden@") {
		t.Errorf("Bcc: reached the hop:\n%s", body)
	}
	if !strings.Contains(body, "From: \"Web Site\" <") || !strings.Contains(body, "@"+relayHostname+">\r\n") {
		t.Errorf("no From: with the -F name and the relay's host name:\n%s", body)
	}
	if !strings.HasSuffix(body, "\r\nhello\r\n") {
		t.Errorf("without -i the lone dot must end the message:\n%s", body)
	}

	// Refusals: nothing is queued, and the exit status says why.
	queuedBefore := len(r.LogLines("msg=queued"))
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"no recipients", []string{"-C", conf}, 64},
		{"unknown option", []string{"-C", conf, "-X", "ops@example.com"}, 64},
		{"bad address", []string{"-C", conf, "not an address"}, 65},
		{"relaying refused", []string{"-C", conf, "ops@example.com", "someone@elsewhere.example"}, 77},
	}
	for _, tc := range cases {
		out, errOut, code := ferry().RunWith(t, "", []byte("Subject: x\n\nbody\n"), append([]string{"sendmail"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", tc.name, code, tc.code, out, errOut)
		}
		if errOut == "" {
			t.Errorf("%s: nothing said on stderr", tc.name)
		}
	}
	if n := len(r.LogLines("msg=queued")); n != queuedBefore {
		t.Errorf("%d messages queued by refused submissions", n-queuedBefore)
	}

	// The relay down: a temporary failure, so the caller tries again.
	down := filepath.Join(t.TempDir(), "down.toml")
	if err := os.WriteFile(down, []byte("[[listener]]\naddress = \""+testrelay.RefusedAddr(t)+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := ferry().RunWith(t, "", []byte("Subject: x\n\nbody\n"), "sendmail", "-C", down, "ops@example.com"); code != 75 {
		t.Errorf("relay down: exit %d, want 75 (EX_TEMPFAIL); stderr: %s", code, errOut)
	}
}

// rcptList joins the forward paths of a capture's recipients with commas.
func rcptList(c capture) string {
	var out []string
	for _, r := range c.sc.Rcpts {
		out = append(out, r.To)
	}
	return strings.Join(out, ",")
}
