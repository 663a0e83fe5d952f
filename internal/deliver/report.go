package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

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
	outs := make([]outcome, len(it.Rcpts))
	for i, idx := range it.Rcpts {
		outs[i] = outcome{idx, state, rep}
	}
	a.reportOutcomes(ctx, it, outs, relay, plan, nil)
}

// report records one recipient's outcome with the queue and writes the
// Postfix-style log line:
//
//	ID: to=<rcpt>, relay=host[ip]:port, delay=1.2, plan=(...), status=sent (250 2.0.0 Ok)
func (a *Agent) report(ctx context.Context, it queue.Item, idx int, state queue.RcptState, rep smtp.Reply, relay, plan string) {
	a.reportOutcomes(ctx, it, []outcome{{idx, state, rep}}, relay, plan, nil)
}

// outcome is one recipient's result of an attempt: its index in the
// envelope, its state and the reply that decided it.
type outcome struct {
	idx   int
	state queue.RcptState
	rep   smtp.Reply
}

// reportOutcomes logs the outcomes of one attempt in recipient order, then
// records them with the queue. The records of several recipients are
// submitted together so that they share one commit: a crash after the
// hop's 250 leaves as few recipients as possible to be delivered again.
// When the session is encrypted (c non-nil) the lines name the TLS version
// and cipher:
//
//	ID: to=<rcpt>, relay=..., delay=0.12, tls=TLSv1.3, cipher=TLS_AES_128_GCM_SHA256, status=sent (...)
func (a *Agent) reportOutcomes(ctx context.Context, it queue.Item, outs []outcome, relay, plan string, c *Client) {
	now := a.cfg.Now()
	// The remote MTA is recorded only when the reply is the hop's (a
	// Remote-MTA field names who said it, RFC 3464 §2.3.5); a refusal of
	// Ferry's own (the plan, a local error) comes without c.
	remote := relay
	if remote == "none" || c == nil {
		remote = ""
	}
	for _, o := range outs {
		a.logOutcome(it.Env, o, now, relay, plan, c)
	}
	record := func(o outcome) {
		to := rcptAddress(it.Env, o.idx)
		res := queue.Result{State: o.state, Reply: o.rep, RemoteMTA: remote, At: now}
		err := a.q.Update(ctx, it.Lease, it.Env.ID, o.idx, res)
		switch {
		case err == nil:
		case errors.Is(err, queue.ErrLeaseLost):
			a.log.Warn("deliver: outcome refused, the lease was taken over by another worker", "id", it.Env.ID, "to", to, "err", err)
		case recordable(err):
			// Kept and written before any delivery starts again.
			a.backlog.add(pendingOutcome{lease: it.Lease, id: it.Env.ID, rcpt: o.idx, to: to, res: res}, err)
		default:
			a.log.Error("deliver: recording outcome failed", "id", it.Env.ID, "to", to, "err", err)
		}
	}
	if len(outs) == 1 {
		record(outs[0])
		return
	}
	var wg sync.WaitGroup
	for _, o := range outs {
		wg.Add(1)
		go func() { defer wg.Done(); record(o) }()
	}
	wg.Wait()
}

// rcptAddress is the address of recipient idx of env, "" when there is none.
func rcptAddress(env *smtp.Envelope, idx int) string {
	if idx >= 0 && idx < len(env.Rcpts) {
		return env.Rcpts[idx].Addr.Address()
	}
	return ""
}

// logOutcome writes the mail-log line of one recipient's outcome.
func (a *Agent) logOutcome(env *smtp.Envelope, o outcome, now time.Time, relay, plan string, c *Client) {
	to := rcptAddress(env, o.idx)
	delay := now.Sub(env.Arrival)
	if env.Arrival.IsZero() {
		delay = 0
	}
	status := statusWord(o.state)
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
	line += ", status=" + status + " (" + o.rep.String() + ")"
	a.log.Info(line, append(attrs, "plan", plan, "status", status, "reply", o.rep.String())...)
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
