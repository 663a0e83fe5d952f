package deliver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
)

// transcriptTo returns a TranscriptFunc writing every session to buf,
// recording the targets asked about.
func transcriptTo(buf *bytes.Buffer, full bool, asked *[]route.Target) TranscriptFunc {
	return func(t route.Target) (*maillog.Transcript, bool) {
		*asked = append(*asked, t)
		return maillog.NewTranscript(bufio.NewWriter(buf), func() time.Time { return time.Unix(0, 0) }), full
	}
}

// TestTranscriptAuthRedacted records a session with STARTTLS and AUTH LOGIN:
// both SASL responses are redacted and the content is summarised.
func TestTranscriptAuthRedacted(t *testing.T) {
	cert, _ := testCerts(t)
	user, pass := "relay-user", "s3cret-pw"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	hop := newFakeHop(t, "STARTTLS", "AUTH LOGIN", "PIPELINING")
	hop.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	hop.script = func(verb, _ string, _, _ int) string {
		switch verb {
		case "AUTH":
			return "334 " + b64("Username:")
		case strings.ToUpper(b64(user)):
			return "334 " + b64("Password:")
		case strings.ToUpper(b64(pass)):
			return "235 2.7.0 Authentication successful"
		}
		return ""
	}
	hop.start()
	rt := hop.route()
	rt.Policy.Auth = &route.Credentials{Username: user, Password: pass}
	var buf bytes.Buffer
	var asked []route.Target
	q := newMemQueue()
	a, _ := testAgent(t, q, rt, func(c *Config) { c.Transcript = transcriptTo(&buf, false, &asked) })
	a.DeliverLease(context.Background(), lease(testMessage("T1", plainMsg, "x@hop.test")))
	q.expect(t, "T1", 0, queue.Sent, "250")
	a.Close() // QUIT, and the transcript is closed
	got := buf.String()
	if len(asked) != 1 || asked[0] != hop.target() {
		t.Errorf("transcript asked for %v, want the hop %v", asked, hop.target())
	}
	for _, want := range []string{
		"*: connected to " + hop.target().String(),
		"S: 220 hop.test ESMTP",
		"C: EHLO ferry.test",
		"C: STARTTLS",
		"C: AUTH LOGIN\n",
		"S: 334 " + b64("Username:"),
		"C: <redacted>\n",
		"S: 235 2.7.0 Authentication successful",
		"C: MAIL FROM:<",
		"*: <message content, " + itoa(len(plainMsg)) + " octets sent>",
		"C: QUIT",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "C: <redacted>") != 2 || strings.Contains(got, b64(user)) || strings.Contains(got, b64(pass)) {
		t.Errorf("credentials not redacted:\n%s", got)
	}
	if strings.Contains(got, "Hello.") {
		t.Errorf("content recorded without full_content:\n%s", got)
	}
}

// TestTranscriptFullContent records the content line by line, as sent
// before dot-stuffing, with DATA and with BDAT.
func TestTranscriptFullContent(t *testing.T) {
	for _, kw := range [][]string{{"PIPELINING"}, {"PIPELINING", "CHUNKING", "BINARYMIME"}} {
		hop := newFakeHop(t, append([]string{"8BITMIME"}, kw...)...).start()
		var buf bytes.Buffer
		var asked []route.Target
		q := newMemQueue()
		a, _ := testAgent(t, q, hop.route(), func(c *Config) { c.Transcript = transcriptTo(&buf, true, &asked) })
		msg := plainMsg
		if len(kw) > 1 {
			msg += "bin\x00ary\r\n" // binary content: BDAT (RFC 3030 §3)
		}
		a.DeliverLease(context.Background(), lease(testMessage("F1", msg, "x@hop.test")))
		q.expect(t, "F1", 0, queue.Sent, "250")
		a.Close()
		got := buf.String()
		verb := "C: DATA\n"
		if len(kw) > 1 {
			verb = "C: BDAT " + itoa(len(msg)) + " LAST\n"
		}
		body := "C: Subject: test\n" + tsPrefix + "C: \n" + tsPrefix + "C: Hello.\n" + tsPrefix + "C: .leading dot\n"
		i, j := strings.Index(got, verb), strings.Index(got, body)
		if i < 0 || j < i || !strings.Contains(got, "octets sent>") {
			t.Errorf("%v: want %q then the content lines %q:\n%s", kw, verb, body, got)
		}
	}
}

// tsPrefix is the timestamp of the fixed transcript clock.
const tsPrefix = "1970-01-01T00:00:00.000Z "
