package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

const probeUsage = `Usage: ferry probe [flags] HOST:PORT | [HOST] | IP
       ferry probe [flags] DOMAIN

Connect to an SMTP server the way Ferry's delivery does and show what it
offers: the greeting, every EHLO keyword with what it means, STARTTLS with
the TLS version, cipher and certificate chain, the keywords after TLS, and
the transfer plan Ferry would use for an 8-bit, a binary and an SMTPUTF8
message to this hop, and what each does to DKIM signatures. A host with a
port, in brackets, or an IP address is connected to directly (no MX lookup;
port 25 unless given); write an IPv6 address in brackets.

A DOMAIN without a port is a recipient domain: its MX hosts are looked up
with Ferry's DNS client ([delivery] resolvers and dnssec_resolver of
--config) and, per host, the DANE and MTA-STS verdicts, the policy that
applies and a STARTTLS check under it are shown (docs/tls-policy.md).

It sends no mail.

Flags:
`

// probeKeyword is one EHLO keyword in the probe report.
type probeKeyword struct {
	Keyword     string `json:"keyword"`
	Params      string `json:"params,omitempty"`
	Description string `json:"description,omitempty"`
}

// probeCert describes one certificate of the hop's chain.
type probeCert struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	DNSNames  []string  `json:"dns_names,omitempty"`
	IPs       []string  `json:"ips,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// probeTLS is the outcome of STARTTLS.
type probeTLS struct {
	Offered     bool           `json:"offered"`
	Error       string         `json:"error,omitempty"`
	Version     string         `json:"version,omitempty"`
	Cipher      string         `json:"cipher,omitempty"`
	Chain       []probeCert    `json:"chain,omitempty"`
	Verified    bool           `json:"verified"`
	VerifyError string         `json:"verify_error,omitempty"`
	Keywords    []probeKeyword `json:"keywords_after_tls,omitempty"`
}

// probePlan is what Ferry would do with one kind of message.
type probePlan struct {
	Message string `json:"message"`
	Plan    string `json:"plan,omitempty"`
	Reply   string `json:"reply,omitempty"`
	// DKIM says what the transfer does to DKIM signatures.
	DKIM string `json:"dkim"`
}

// probeReport is the whole probe, printed as text or JSON.
type probeReport struct {
	Target   string         `json:"target"`
	Greeting string         `json:"greeting"`
	EHLO     string         `json:"ehlo_reply"`
	ESMTP    bool           `json:"esmtp"`
	Keywords []probeKeyword `json:"keywords"`
	TLS      *probeTLS      `json:"tls,omitempty"`
	Plans    []probePlan    `json:"plans"`
	Error    string         `json:"error,omitempty"`
	// hop is the session as the hop-capability cache would record it,
	// set once EHLO (and STARTTLS, when tried) succeeded; "ferry explain"
	// plans with it.
	hop *deliver.HopInfo
}

func runProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, probeUsage)
		fs.PrintDefaults()
	}
	asJSON := fs.Bool("json", false, "print the report as JSON")
	ehlo := fs.String("ehlo", "", "EHLO name (default: this machine's host name)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	noTLS := fs.Bool("no-tls", false, "do not try STARTTLS")
	caFile := fs.String("ca", "", "PEM file of CA certificates to verify the hop against (default: system roots)")
	configFile := fs.String("config", "", "the server's TOML configuration `file`, for DOMAIN: its DNS and TLS policy settings (default: $FERRY_CONFIG, else /etc/ferry/ferry.toml when it exists)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 1, 1, "HOST[:PORT] or DOMAIN") {
		return 2
	}
	name := *ehlo
	if name == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			name = h
		} else {
			name = "localhost"
		}
	}
	var roots *x509.CertPool
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintf(stderr, "ferry probe: %v\n", err)
			return 2
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "ferry probe: %s holds no PEM certificates\n", *caFile)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if isDomainArg(pos[0]) {
		cfg, err := loadServeConfig(serveFlags{configFile: *configFile})
		if err != nil {
			fmt.Fprintf(stderr, "ferry probe: %v\n", err)
			return 2
		}
		if roots == nil && cfg.Delivery.TLSCAFile != "" {
			if roots, err = loadCAFile(cfg.Delivery.TLSCAFile); err != nil {
				fmt.Fprintf(stderr, "ferry probe: delivery.tls_ca_file: %v\n", err)
				return 2
			}
		}
		logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		rep := probeDomain(ctx, cfg, strings.TrimSuffix(pos[0], "."), name, roots, logger)
		return writeProbeDomain(stdout, stderr, rep, *asJSON)
	}
	target, err := probeTarget(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "ferry probe: %v\n", err)
		return 2
	}
	rep := probe(ctx, target, name, !*noTLS, roots)
	if !writeProbe(stdout, stderr, rep, *asJSON, func() { printProbe(stdout, rep) }) {
		return 1
	}
	if rep.Error != "" {
		return 1
	}
	return 0
}

// writeProbe prints a probe report as indented JSON, or with text; false
// when the JSON could not be written.
func writeProbe(stdout, stderr io.Writer, rep any, asJSON bool, text func()) bool {
	if !asJSON {
		text()
		return true
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintf(stderr, "ferry probe: %v\n", err)
		return false
	}
	return true
}

// isDomainArg reports whether a probe argument is a recipient domain: a
// name without a port, not an IP address and not in brackets.
func isDomainArg(s string) bool {
	if strings.ContainsAny(s, ":[]") {
		return false
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return false
	}
	return strings.Contains(strings.TrimSuffix(s, "."), ".")
}

// probeTarget parses HOST[:PORT] and resolves HOST to its first address.
func probeTarget(ctx context.Context, s string) (route.Target, error) {
	hop, err := route.ParseNextHop(s)
	if err != nil {
		return route.Target{}, err
	}
	if ip, err := netip.ParseAddr(hop.Host); err == nil {
		return route.Target{Host: hop.Host, IP: ip, Port: hop.Port}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", hop.Host)
	if err != nil {
		return route.Target{}, fmt.Errorf("looking up %s: %w", hop.Host, err)
	}
	if len(ips) == 0 {
		return route.Target{}, fmt.Errorf("%s has no addresses", hop.Host)
	}
	return route.Target{Host: hop.Host, IP: ips[0].Unmap(), Port: hop.Port}, nil
}

// probe runs the session and collects the report; a failure is recorded in
// Error with whatever was learnt before it.
func probe(ctx context.Context, t route.Target, name string, tryTLS bool, roots *x509.CertPool) probeReport {
	rep := probeReport{Target: t.String()}
	c, err := deliver.Dial(ctx, t, deliver.Timeouts{}, nil)
	if err != nil {
		var re *deliver.ReplyError
		if errors.As(err, &re) {
			rep.Greeting = re.Reply.String()
		}
		rep.Error = err.Error()
		return rep
	}
	defer c.Quit()
	rep.Greeting = c.Greeting().String()
	if err := c.Hello(ctx, name, nil); err != nil {
		rep.Error = err.Error()
		return rep
	}
	if hr := c.HelloReply(); len(hr.Lines) > 0 {
		rep.EHLO = strconv.Itoa(hr.Code) + " " + hr.Lines[0]
	}
	rep.ESMTP = c.ESMTP()
	rep.Keywords = keywordList(c.Offered())
	if tryTLS && c.Offered().Has("STARTTLS") {
		rep.TLS = &probeTLS{Offered: true}
		cfg := &tls.Config{ServerName: t.Host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}
		if err := c.StartTLS(ctx, cfg); err != nil {
			rep.TLS.Error = err.Error()
			rep.Plans = plans(c.Extensions())
			if !c.Broken() {
				hi := deliver.HopInfoOf(c, time.Now())
				rep.hop = &hi
			}
			return rep
		}
		st, _ := c.TLS()
		rep.TLS.Version = tls.VersionName(st.Version)
		rep.TLS.Cipher = tls.CipherSuiteName(st.CipherSuite)
		for _, cert := range st.PeerCertificates {
			pc := probeCert{Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), DNSNames: cert.DNSNames,
				NotBefore: cert.NotBefore, NotAfter: cert.NotAfter}
			for _, ip := range cert.IPAddresses {
				pc.IPs = append(pc.IPs, ip.String())
			}
			rep.TLS.Chain = append(rep.TLS.Chain, pc)
		}
		if err := verifyChain(st, t.Host, roots); err != nil {
			rep.TLS.VerifyError = err.Error()
		} else {
			rep.TLS.Verified = true
		}
		if err := c.Hello(ctx, name, nil); err != nil {
			rep.Error = "EHLO after STARTTLS: " + err.Error()
			return rep
		}
		rep.TLS.Keywords = keywordList(c.Offered())
	} else if c.Offered().Has("STARTTLS") {
		rep.TLS = &probeTLS{Offered: true, Error: "not tried (--no-tls)"}
	} else {
		rep.TLS = &probeTLS{Offered: false}
	}
	rep.Plans = plans(c.Extensions())
	hi := deliver.HopInfoOf(c, time.Now())
	rep.hop = &hi
	return rep
}

// verifyChain checks the hop's certificate the way a tls=required route
// does.
func verifyChain(st tls.ConnectionState, host string, roots *x509.CertPool) error {
	if len(st.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
	return err
}

// keywordList turns an extension set into sorted report entries.
func keywordList(ext smtp.Extensions) []probeKeyword {
	var out []probeKeyword
	for _, k := range ext.Keywords() {
		out = append(out, probeKeyword{Keyword: k, Params: ext[k], Description: deliver.DescribeKeyword(k)})
	}
	return out
}

// plans reports the transfer plan for sample messages under the default
// route policy with the built-in converter.
func plans(ext smtp.Extensions) []probePlan {
	samples := []struct {
		name  string
		needs deliver.MessageNeeds
	}{
		{"8-bit MIME message", deliver.MessageNeeds{EightBit: true, Size: 10000}},
		{"binary MIME message", deliver.MessageNeeds{EightBit: true, Binary: true, Size: 10000}},
		{"SMTPUTF8 message (UTF-8 address and header)", deliver.MessageNeeds{EightBit: true, SMTPUTF8: true, UTF8LocalPart: true, UTF8Headers: true, Size: 10000}},
		{"SMTPUTF8 message (ASCII local parts, IDN domain)", deliver.MessageNeeds{SMTPUTF8: true, Size: 10000}},
	}
	var out []probePlan
	for _, s := range samples {
		p, r := deliver.Plan(s.needs, ext, route.Policy{})
		if r != nil {
			out = append(out, probePlan{Message: s.name, Reply: "fail at once: " + r.String(), DKIM: dkimFate(p, r, route.Policy{})})
			continue
		}
		out = append(out, probePlan{Message: s.name, Plan: p.String(), DKIM: dkimFate(p, nil, route.Policy{})})
	}
	return out
}

// printProbe writes the report for people.
func printProbe(w io.Writer, r probeReport) {
	fmt.Fprintf(w, "Next hop:  %s\n", r.Target)
	if r.Greeting != "" {
		fmt.Fprintf(w, "Greeting:  %s\n", r.Greeting)
	}
	if r.EHLO != "" {
		mode := "EHLO"
		if !r.ESMTP {
			mode = "HELO (EHLO refused: no ESMTP keywords)"
		}
		fmt.Fprintf(w, "%s:  %s\n", mode, r.EHLO)
		printKeywords(w, r.Keywords)
	}
	if t := r.TLS; t != nil {
		switch {
		case !t.Offered:
			fmt.Fprintln(w, "STARTTLS:  not offered")
		case t.Error != "":
			fmt.Fprintf(w, "STARTTLS:  %s\n", t.Error)
		default:
			fmt.Fprintf(w, "STARTTLS:  %s, %s\n", t.Version, t.Cipher)
			for i, c := range t.Chain {
				fmt.Fprintf(w, "  cert %d: %s\n          issuer %s\n          valid %s to %s\n", i, c.Subject, c.Issuer,
					c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly))
				if names := append(append([]string(nil), c.DNSNames...), c.IPs...); len(names) > 0 {
					fmt.Fprintf(w, "          names %s\n", strings.Join(names, ", "))
				}
			}
			if t.Verified {
				fmt.Fprintln(w, "  verified: yes (a tls=required route would accept it)")
			} else {
				fmt.Fprintf(w, "  verified: no (%s); a tls=required route would defer with 4.7.5\n", t.VerifyError)
			}
			fmt.Fprintln(w, "EHLO after STARTTLS:")
			printKeywords(w, t.Keywords)
		}
	}
	if len(r.Plans) > 0 {
		fmt.Fprintln(w, "What Ferry would do (default route policy):")
		for _, p := range r.Plans {
			what := p.Plan
			if what == "" {
				what = p.Reply
			}
			fmt.Fprintf(w, "  %-48s %s\n", p.Message+":", what)
			fmt.Fprintf(w, "  %-48s DKIM: %s\n", "", p.DKIM)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Error:     %s\n", r.Error)
	}
}

func printKeywords(w io.Writer, kws []probeKeyword) {
	if len(kws) == 0 {
		fmt.Fprintln(w, "  (no keywords)")
	}
	for _, k := range kws {
		kw := k.Keyword
		if k.Params != "" {
			kw += " " + k.Params
		}
		desc := k.Description
		if desc == "" {
			desc = "(not known to Ferry)"
		}
		fmt.Fprintf(w, "  %-22s %s\n", kw+":", desc)
	}
}
