package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/admin"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

const explainUsage = `Usage: ferry explain --to user@domain [--from addr] [--cached] [--json] FILE|ID

Says in plain words what Ferry would do with a message for one recipient,
and why: the route, the next hop and what it offers (probed now, or from
the running server's hop-capability cache with --cached), what the message
needs, the transfer plan, which MIME parts would be converted and how, and
what that means (a bounce with the reason), and what happens to DKIM
signatures: which the message carries (verified now when [dkim] resolver
is set), which the conversion breaks, whether Ferry signs it and with
which key, and whether it adds an ARC set. FILE is a message file; otherwise the argument is a queue ID
(or a unique prefix) of the running server, whose envelope is then used.
Takes the same --config, --spool and --route flags as "ferry serve". It
sends no mail.

Flags:
`

// explainOptions are the parsed flags of "ferry explain".
type explainOptions struct {
	target  adminTarget
	routes  stringList
	to      string
	from    string
	cached  bool
	asJSON  bool
	ehlo    string
	timeout time.Duration
}

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, explainUsage)
		fs.PrintDefaults()
	}
	var o explainOptions
	o.target.register(fs)
	fs.Var(&o.routes, "route", "route `DOMAIN=NEXTHOP[,NEXTHOP…]` as for ferry serve (repeatable)")
	fs.StringVar(&o.to, "to", "", "the recipient `address` to explain delivery for (default for an ID: its first recipient still to deliver)")
	fs.StringVar(&o.from, "from", "", "the sender `address` (default: the queued sender, or the null sender for a file)")
	fs.BoolVar(&o.cached, "cached", false, "use the running server's cached capabilities of the next hop instead of probing it")
	fs.BoolVar(&o.asJSON, "json", false, "print the explanation as JSON")
	fs.StringVar(&o.ehlo, "ehlo", "", "EHLO name for the probe (default: the configured hostname)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 1, 1, "ID | FILE") {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	rep, err := explain(ctx, o, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "ferry explain: %v\n", err)
		return 1
	}
	if o.asJSON {
		if c := printJSON(stdout, stderr, rep); c != 0 {
			return c
		}
	} else {
		printExplanation(stdout, rep)
	}
	if rep.Error != "" {
		return 1
	}
	return 0
}

// explainMessage is the message to explain: its content and envelope.
type explainMessage struct {
	source  string
	content []byte
	env     *smtp.Envelope
}

// loadExplainMessage reads FILE, or fetches a queued message by ID.
func loadExplainMessage(ctx context.Context, o explainOptions, arg string) (explainMessage, error) {
	if b, err := os.ReadFile(arg); err == nil {
		env := &smtp.Envelope{}
		if o.from != "" {
			p, err := parsePath(o.from)
			if err != nil {
				return explainMessage{}, fmt.Errorf("--from %q: %w", o.from, err)
			}
			env.From = p
		}
		if o.to == "" {
			return explainMessage{}, errors.New("--to is required for a message file")
		}
		return explainMessage{source: arg, content: b, env: env}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return explainMessage{}, err
	}
	c, err := o.target.client()
	if err != nil {
		return explainMessage{}, fmt.Errorf("%s is no file, and no queue to look it up in: %w", arg, err)
	}
	m, err := c.Show(ctx, arg, true)
	if err != nil {
		return explainMessage{}, fmt.Errorf("%s is no file; as a queue ID: %w", arg, err)
	}
	env, err := envelopeOf(m, o.from)
	if err != nil {
		return explainMessage{}, err
	}
	return explainMessage{source: "queued message " + m.ID, content: m.Content, env: env}, nil
}

// envelopeOf rebuilds the envelope parts that matter to a transfer plan
// from the admin API's view of a queued message.
func envelopeOf(m *admin.Message, from string) (*smtp.Envelope, error) {
	env := &smtp.Envelope{ID: m.ID, SMTPUTF8: m.SMTPUTF8, RequireTLS: m.RequireTLS, TLSOptional: m.TLSOptional,
		Ret: smtp.DSNReturn(m.Ret), EnvID: m.EnvID, Body: smtp.BodyType(m.Body)}
	if from == "" {
		from = m.Sender
	}
	p, err := parsePath(from)
	if err != nil {
		return nil, fmt.Errorf("sender %q: %w", from, err)
	}
	env.From = p
	for _, r := range m.Rcpts {
		rp, err := parsePath(r.Addr)
		if err != nil {
			continue
		}
		env.Rcpts = append(env.Rcpts, smtp.Recipient{Addr: rp, Notify: parseNotify(r.Notify), ORcpt: r.ORcpt})
	}
	return env, nil
}

// parsePath parses "user@domain", "<user@domain>" or "<>".
func parsePath(s string) (smtp.Path, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	if s == "" {
		return smtp.Path{}, nil
	}
	return smtp.ParseAddress(s)
}

// parseNotify reads "SUCCESS,FAILURE" back into flags.
func parseNotify(s string) smtp.Notify {
	var n smtp.Notify
	for _, f := range strings.Split(s, ",") {
		switch f {
		case "NEVER":
			n |= smtp.NotifyNever
		case "SUCCESS":
			n |= smtp.NotifySuccess
		case "FAILURE":
			n |= smtp.NotifyFailure
		case "DELAY":
			n |= smtp.NotifyDelay
		}
	}
	return n
}

// pickRecipient returns the index of --to in env (adding it when the
// envelope lacks it), or of the first recipient when --to is empty.
func pickRecipient(env *smtp.Envelope, to string) (int, error) {
	if to == "" {
		if len(env.Rcpts) == 0 {
			return 0, errors.New("give --to: the message has no recipient")
		}
		return 0, nil
	}
	p, err := parsePath(to)
	if err != nil || p.Domain == "" {
		return 0, fmt.Errorf("--to %q: want user@domain", to)
	}
	for i, r := range env.Rcpts {
		if strings.EqualFold(r.Addr.Address(), p.Address()) {
			return i, nil
		}
	}
	env.Rcpts = append(env.Rcpts, smtp.Recipient{Addr: p})
	return len(env.Rcpts) - 1, nil
}

// explain gathers everything the explanation needs.
func explain(ctx context.Context, o explainOptions, arg string) (*explanation, error) {
	cfg, err := loadServeConfig(serveFlags{configFile: o.target.config, spool: o.target.spool})
	if err != nil {
		return nil, err
	}
	table, err := buildRoutes(cfg, o.routes)
	if err != nil {
		return nil, err
	}
	msg, err := loadExplainMessage(ctx, o, arg)
	if err != nil {
		return nil, err
	}
	idx, err := pickRecipient(msg.env, o.to)
	if err != nil {
		return nil, err
	}
	rcpt := msg.env.Rcpts[idx].Addr
	domain := strings.ToLower(rcpt.Domain)
	rt := table.Lookup(domain)
	ex := &explanation{Message: msg.source, Size: int64(len(msg.content)), From: formatAddr(msg.env.From),
		To: rcpt.Address(), Route: rt.String(), Policy: policyOf(rt.Policy)}

	scan, err := downgrade.Scan(bytes.NewReader(msg.content))
	if err != nil {
		return nil, fmt.Errorf("scanning the message: %w", err)
	}
	ex.needs = deliver.NeedsOf(msg.env, []int{idx}, scan, ex.Size)
	ex.Needs = needsList(ex.needs)
	ex.Parts = countLeaves(msg.content)
	if !scan.SevenBit() || scan.HeaderEightBit {
		ex.convert(msg.content, downgrade.Options{})
	}

	targets, err := table.Resolve(ctx, rt, domain)
	if err != nil {
		ex.Error = "routing failed: " + err.Error()
		return ex, nil
	}
	for _, t := range targets {
		ex.Targets = append(ex.Targets, t.String())
	}
	ex.TLSPolicy = explainTLS(ctx, cfg, rt, domain, targets, msg.env)
	hop, source, err := findHop(ctx, o, cfg.Hostname, rt.Policy, targets)
	if err != nil {
		ex.Error = err.Error()
		return ex, nil
	}
	ex.hop, ex.Source = hop, source
	ex.NextHop, ex.Relay, ex.Seen, ex.TLS = hop.Hop, hop.Relay, hop.Seen, hop.TLS
	offered := admin.Offered(*hop, rt.Policy)
	for _, k := range offered.Keywords() {
		if v := offered.Param(k); v != "" {
			k += " " + v
		}
		ex.Keywords = append(ex.Keywords, k)
	}
	plan, reply := admin.PlanFor(ex.needs, *hop, rt.Policy)
	ex.plan = plan
	if reply == nil && plan.Convert && plan.Allow8Bit {
		// Delivery converts for this hop's 8BITMIME: 8-bit parts are kept
		// (and 8-bit header text too when the message goes with SMTPUTF8).
		ex.convert(msg.content, downgrade.Options{EightBit: true, UTF8Headers: plan.SMTPUTF8})
	}
	if reply != nil {
		ex.Reply = reply.String()
	} else {
		ex.Plan = plan.String()
	}
	ex.Explanation = sentences(ex, rt.Policy)
	if ex.Signatures, err = signatureSentences(ctx, cfg, ex, msg.content, msg.env, rt.Policy); err != nil {
		ex.Error = "DKIM: " + err.Error()
	}
	return ex, nil
}

// convert runs the converter on content as delivery would, for the target
// opts gives, and records its report or error.
func (ex *explanation) convert(content []byte, opts downgrade.Options) {
	ex.Conversion, ex.ConvertError, ex.convertEnhanced = nil, "", ""
	conv, err := downgrade.Convert(io.Discard, bytes.NewReader(content), opts)
	if err != nil {
		ex.ConvertError = err.Error()
		var de *downgrade.Error
		if errors.As(err, &de) {
			ex.convertEnhanced = de.Enhanced()
		}
		return
	}
	ex.Conversion = conv
}

// findHop learns what the next hop offers: from the running server's cache
// with --cached, else by probing the targets in order the way delivery
// connects (see probe), with STARTTLS unless the route says tls=none.
func findHop(ctx context.Context, o explainOptions, hostname string, pol route.Policy, targets []route.Target) (*deliver.HopInfo, string, error) {
	if o.cached {
		c, err := o.target.client()
		if err != nil {
			return nil, "", err
		}
		all, err := c.Hops(ctx)
		if err != nil {
			return nil, "", err
		}
		known := map[string]deliver.HopInfo{}
		for _, h := range all {
			known[h.Hop] = h
		}
		var keys []string
		for _, t := range targets {
			if h, ok := known[t.HopKey()]; ok {
				return &h, "cache", nil
			}
			keys = append(keys, t.HopKey())
		}
		return nil, "", fmt.Errorf("the running server has not connected to %s since it started; run without --cached to probe", strings.Join(keys, " or "))
	}
	name := o.ehlo
	if name == "" {
		name = pol.EHLOName
	}
	if name == "" {
		name = hostname
	}
	var failures []string
	for _, t := range targets {
		rep := probe(ctx, t, name, pol.TLS != route.TLSNone, nil)
		if rep.hop == nil && pol.TLS != route.TLSNone && rep.TLS != nil && rep.TLS.Error != "" {
			// The handshake failed: delivery (tls=may) reconnects without TLS.
			rep = probe(ctx, t, name, false, nil)
		}
		if rep.hop != nil {
			return rep.hop, "probe", nil
		}
		failures = append(failures, t.String()+": "+rep.Error)
	}
	return nil, "", fmt.Errorf("no next hop reachable (%s)", strings.Join(failures, "; "))
}

// formatAddr writes a path in angle brackets.
func formatAddr(p smtp.Path) string {
	if p.IsNull() {
		return "<>"
	}
	return "<" + p.Address() + ">"
}
