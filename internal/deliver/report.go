package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// statusWord is the Postfix log word for a recipient state.
func statusWord(s queue.RcptState) string {
	switch s {
	case queue.Sent:
		return "sent"
	case queue.Failed:
		return "bounced"
	}
	return "deferred"
}

// reportAll reports every recipient of an item with the same outcome.
func (a *Agent) reportAll(ctx context.Context, it queue.Item, state queue.RcptState, rep smtp.Reply, relay, plan string) {
	for _, idx := range it.Rcpts {
		a.report(ctx, it, idx, state, rep, relay, plan)
	}
}

// report records one recipient's outcome with the queue and writes the
// Postfix-style log line:
//
//	ID: to=<rcpt>, relay=host[ip]:port, delay=1.2, plan=(...), status=sent (250 2.0.0 Ok)
func (a *Agent) report(ctx context.Context, it queue.Item, idx int, state queue.RcptState, rep smtp.Reply, relay, plan string) {
	a.reportVia(ctx, it, idx, state, rep, relay, plan, nil)
}

// reportVia is report for an outcome the hop gave over connection c; when
// the session is encrypted the line names the TLS version and cipher:
//
//	ID: to=<rcpt>, relay=..., delay=0.12, tls=TLSv1.3, cipher=TLS_AES_128_GCM_SHA256, status=sent (...)
func (a *Agent) reportVia(ctx context.Context, it queue.Item, idx int, state queue.RcptState, rep smtp.Reply, relay, plan string, c *Client) {
	now := a.cfg.Now()
	env := it.Env
	to := ""
	if idx >= 0 && idx < len(env.Rcpts) {
		to = env.Rcpts[idx].Addr.Address()
	}
	delay := now.Sub(env.Arrival)
	if env.Arrival.IsZero() {
		delay = 0
	}
	status := statusWord(state)
	line := fmt.Sprintf("%s: to=<%s>, relay=%s, delay=%.2f", env.ID, to, relay, delay.Seconds())
	attrs := []any{"event", status, "id", env.ID, "to", to, "relay", relay, "delay", delay.Seconds()}
	if c != nil {
		if st, ok := c.TLS(); ok {
			version, cipher := versionName(st.Version), tls.CipherSuiteName(st.CipherSuite)
			line += ", tls=" + version + ", cipher=" + cipher
			attrs = append(attrs, "tls", version, "cipher", cipher, "tls_verified", c.TLSVerified())
		}
	}
	if plan != "" {
		line += ", plan=(" + plan + ")"
	}
	line += ", status=" + status + " (" + rep.String() + ")"
	a.log.Info(line, append(attrs, "plan", plan, "status", status, "reply", rep.String())...)
	remote := relay
	if remote == "none" {
		remote = ""
	}
	res := queue.Result{State: state, Reply: rep, RemoteMTA: remote, At: now}
	err := a.q.Update(ctx, it.Lease, env.ID, idx, res)
	switch {
	case err == nil:
	case errors.Is(err, queue.ErrLeaseLost):
		a.log.Warn("deliver: outcome refused, the lease was taken over by another worker", "id", env.ID, "to", to, "err", err)
	case recordable(err):
		// Kept and written before any delivery starts again.
		a.backlog.add(pendingOutcome{lease: it.Lease, id: env.ID, rcpt: idx, to: to, res: res}, err)
	default:
		a.log.Error("deliver: recording outcome failed", "id", env.ID, "to", to, "err", err)
	}
}

// logTLS writes one line per STARTTLS attempt with a hop, in the words of
// Postfix's "Verified TLS connection established to host[ip]:port: TLSv1.3
// with cipher ...": on success with the version, the cipher and whether the
// certificate verified; on failure with the refusal or handshake error.
func (a *Agent) logTLS(c *Client, err error) {
	relay := c.Target().String()
	if err != nil {
		var re *ReplyError
		what := "TLS handshake with " + relay + " failed: " + err.Error()
		if errors.As(err, &re) {
			what = "STARTTLS refused by " + relay + ": " + re.Reply.String()
		}
		a.log.Info(what, "event", "tls_failed", "relay", relay, "err", err.Error())
		return
	}
	st, ok := c.TLS()
	if !ok {
		return
	}
	trust := "Untrusted"
	if c.TLSVerified() {
		trust = "Verified"
	}
	version, cipher := versionName(st.Version), tls.CipherSuiteName(st.CipherSuite)
	a.log.Info(fmt.Sprintf("%s TLS connection established to %s: %s with cipher %s", trust, relay, version, cipher),
		"event", "tls", "relay", relay, "tls", version, "cipher", cipher, "tls_verified", c.TLSVerified())
}

// verifyPeer checks the hop's certificate chain against cfg's roots (the
// system's when nil) and its name, for a handshake that skipped the check
// (opportunistic TLS), so the log can still tell a verified hop.
func verifyPeer(st tls.ConnectionState, cfg *tls.Config) error {
	if len(st.PeerCertificates) == 0 {
		return errors.New("deliver: hop sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, ic := range st.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName:       cfg.ServerName,
		Roots:         cfg.RootCAs,
		Intermediates: inter,
	})
	if err != nil {
		return fmt.Errorf("deliver: verifying hop certificate: %w", err)
	}
	return nil
}

// versionName names a TLS version as OpenSSL and Postfix logs do
// ("TLSv1.3"), so log searches written for Postfix find Ferry's lines.
func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}
