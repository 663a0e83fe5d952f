package config

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// WriteTOML writes c as a TOML document that Parse reads back to the same
// Config: every option, in the order docs/config.md lists them. It is what
// "ferry check-config" prints as the effective configuration.
func (c Config) WriteTOML(w io.Writer) error {
	tw := &tomlWriter{w: bufio.NewWriter(w)}
	tw.str("hostname", c.Hostname)
	for _, l := range c.Listeners {
		tw.header("[[listener]]")
		tw.str("address", l.Address)
		tw.list("keywords", l.Keywords)
		tw.raw("max_message_size", quote(FormatSize(l.MaxMessageSize)))
		tw.int("max_recipients", l.MaxRecipients)
		tw.str("bare_newline", l.BareNewline)
		tw.str("transcript_dir", l.TranscriptDir)
		tw.str("tls_cert", l.TLSCert)
		tw.str("tls_key", l.TLSKey)
		tw.bool("require_tls", l.RequireTLS)
		tw.bool("implicit_tls", l.ImplicitTLS)
		tw.str("auth_users_file", l.AuthUsersFile)
		tw.bool("allow_insecure_auth", l.AllowInsecureAuth)
	}
	tw.header("[limits]")
	tw.int("max_connections", c.Limits.MaxConnections)
	tw.int("max_connections_per_ip", c.Limits.MaxConnectionsPerIP)
	tw.int("max_errors", c.Limits.MaxErrors)
	tw.int("max_received", c.Limits.MaxReceived)
	tw.int("reserved_connections", c.Limits.ReservedConnections)
	tw.int("max_auth_checks", c.Limits.MaxAuthChecks)
	tw.header("[timeouts]")
	tw.dur("greeting", c.Timeouts.Greeting)
	tw.dur("command", c.Timeouts.Command)
	tw.dur("data_block", c.Timeouts.DataBlock)
	tw.dur("data_total", c.Timeouts.DataTotal)
	tw.dur("hello_phase", c.Timeouts.HelloPhase)
	tw.dur("envelope_phase", c.Timeouts.EnvelopePhase)
	tw.dur("pregreet_wait", c.Timeouts.PregreetWait)
	tw.dur("auth_check_wait", c.Timeouts.AuthCheckWait)
	tw.header("[relay]")
	tw.list("networks", prefixStrings(c.Relay.Networks))
	tw.list("accept_domains", c.Relay.AcceptDomains)
	tw.header("[relay.rate]")
	tw.str("per_ip", FormatRate(c.Relay.PerIP))
	tw.str("per_user", FormatRate(c.Relay.PerUser))
	for _, r := range c.Relay.SenderRules {
		tw.header("[[relay.sender_rule]]")
		tw.list("networks", prefixStrings(r.Networks))
		tw.list("users", r.Users)
		tw.list("domains", r.Domains)
	}
	q := c.Queue
	tw.header("[queue]")
	tw.str("spool", q.Spool)
	tw.dur("retry_initial", q.RetryInitial)
	tw.dur("retry_max", q.RetryMax)
	tw.dur("lifetime", q.Lifetime)
	tw.dur("bounce_lifetime", q.BounceLifetime)
	tw.dur("delay_warning", q.DelayWarning)
	tw.int("hop_concurrency", q.HopConcurrency)
	tw.raw("segment_size", quote(FormatSize(q.SegmentSize)))
	tw.raw("reserve", quote(FormatSize(q.Reserve)))
	dl := c.Delivery
	tw.header("[delivery]")
	tw.str("ehlo_name", dl.EHLOName)
	tw.int("workers", dl.Workers)
	tw.int("max_messages_per_connection", dl.MaxMessagesPerConnection)
	tw.dur("idle_timeout", dl.IdleTimeout)
	tw.str("smarthost", dl.Smarthost)
	tw.str("tls_ca_file", dl.TLSCAFile)
	tw.writeTLSPolicy(dl.TLSPolicy)
	t := dl.Timeouts
	tw.header("[delivery.timeouts]")
	tw.dur("connect", t.Connect)
	tw.dur("greeting", t.Greeting)
	tw.dur("mail", t.Mail)
	tw.dur("rcpt", t.Rcpt)
	tw.dur("data_init", t.DataInit)
	tw.dur("data_block", t.DataBlock)
	tw.dur("data_done", t.DataDone)
	for _, r := range c.Routes {
		tw.header("[[route]]")
		tw.str("domain", r.Domain)
		tw.str("nexthop", r.NextHop)
		tw.str("eightbit", r.EightBit)
		tw.str("dkim_signed", r.DKIMSigned)
		tw.str("dkim_key", r.DKIMKey)
		tw.str("tls", r.TLS)
		tw.str("auth_user", r.AuthUser)
		tw.str("auth_password_file", r.AuthPasswordFile)
		tw.str("ehlo_name", r.EHLOName)
		tw.list("discard_keywords", r.DiscardKeywords)
		tw.int("max_connections", r.MaxConnections)
		tw.int("max_messages_per_connection", r.MaxMessagesPerConnection)
	}
	tw.header("[log]")
	tw.str("format", c.Log.Format)
	tw.str("level", c.Log.Level)
	tw.str("file", c.Log.File)
	tw.header("[admin]")
	if c.Admin.Address != "" { // unset: the socket in the spool
		tw.str("address", c.Admin.Address)
	}
	tw.str("token_file", c.Admin.TokenFile)
	tw.str("metrics_listen", c.Admin.MetricsListen)
	tw.header("[dsn]")
	tw.str("postmaster", c.DSN.Postmaster)
	tw.raw("max_return_size", quote(FormatSize(c.DSN.MaxReturnSize)))
	tw.header("[transcripts]")
	tw.str("dir", c.Transcripts.Dir)
	tw.list("clients", prefixStrings(c.Transcripts.Clients))
	tw.list("next_hops", c.Transcripts.NextHops)
	tw.bool("full_content", c.Transcripts.FullContent)
	tw.dkim(c.DKIM)
	if tw.err != nil {
		return fmt.Errorf("write config: %w", tw.err)
	}
	if err := tw.w.Flush(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// tomlWriter writes "key = value" lines, keeping the first error.
type tomlWriter struct {
	w   *bufio.Writer
	err error
}

func (t *tomlWriter) line(s string) {
	if t.err == nil {
		_, t.err = t.w.WriteString(s + "\n")
	}
}

func (t *tomlWriter) header(h string)       { t.line("\n" + h) }
func (t *tomlWriter) raw(key, v string)     { t.line(key + " = " + v) }
func (t *tomlWriter) str(key, v string)     { t.raw(key, quote(v)) }
func (t *tomlWriter) int(key string, v int) { t.raw(key, strconv.Itoa(v)) }
func (t *tomlWriter) bool(key string, v bool) {
	t.raw(key, strconv.FormatBool(v))
}
func (t *tomlWriter) dur(key string, v time.Duration) {
	t.raw(key, quote(FormatDuration(v)))
}

func (t *tomlWriter) list(key string, vs []string) {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = quote(v)
	}
	t.raw(key, "["+strings.Join(q, ", ")+"]")
}

// prefixStrings formats networks as ParseNetwork reads them back.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// quote formats s as a TOML basic string (TOML 1.0 §String): backslash,
// quote and control characters escaped, everything else as is.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
