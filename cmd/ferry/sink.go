package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ferrymta/ferry/internal/sink"
	"github.com/ferrymta/ferry/internal/smtp"
)

const sinkUsage = `Usage: ferry sink [flags]

Run an SMTP server that plays a next hop: it offers the EHLO keywords you
choose, answers with scripted replies, and saves every message it accepts
byte for byte (after dot-unstuffing; no Received field is added) as
DIR/ID.eml with a JSON sidecar DIR/ID.json (envelope, parameters, EHLO name,
TLS, time received, raw MAIL and RCPT lines). It prints the address it
listens on, logs to stderr, and runs until interrupted.

Example, a Lotus Domino R5 without 8BITMIME that rejects 8-bit content:

  ferry sink --listen 127.0.0.1:2526 --keywords SIZE,PIPELINING,HELP \
             --size 10240000 --strict-7bit --out /tmp/sink

Scripted replies (--reply, repeatable, tried in order, first match wins):

  STAGE[#N]:PATTERN=CODE [X.Y.Z] TEXT

  STAGE    CONNECT (instead of the greeting, then close), MAIL, RCPT,
           DATA (at the DATA command or first BDAT), END (after the content,
           instead of "250 queued")
  PATTERN  glob, "*" and "?", case-insensitive, matched against the address
           without <> ("<>" is the null sender); DATA and END try the sender
           and every recipient; CONNECT takes "*" or N, the first N
           connections
  #N       apply only to the first N matches (e.g. defer once, then accept)

  --reply 'RCPT:*@bad.example=550 5.1.1 no such user'
  --reply 'MAIL#1:*=451 4.3.0 try later'
  --reply 'END:*=554 5.6.0 content rejected'
  --reply 'CONNECT:3=421 4.7.0 busy'

Enhanced codes are sent only when ENHANCEDSTATUSCODES is among the keywords.

With --tls-cert and --tls-key the sink offers STARTTLS (RFC 3207, TLS 1.2 at
least) after the keywords; the sidecar's "tls" says whether a message came
over TLS.

Flags:
`

// replyFlags collects repeated --reply flags.
type replyFlags []sink.Rule

func (r *replyFlags) String() string { return "" }

func (r *replyFlags) Set(s string) error {
	rule, err := sink.ParseRule(s)
	if err != nil {
		return err
	}
	*r = append(*r, rule)
	return nil
}

func runSink(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveSink(ctx, args, stdout, stderr)
}

// serveSink runs "ferry sink" until ctx ends.
func serveSink(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), sinkUsage)
		fs.PrintDefaults()
	}
	var (
		opts     sink.Options
		replies  replyFlags
		keywords string
		bare     string
	)
	fs.StringVar(&opts.Addr, "listen", "127.0.0.1:2526", "TCP `address` to listen on (port 0: any free port)")
	fs.StringVar(&opts.Hostname, "hostname", "sink.test", "`name` in the greeting and the EHLO reply")
	fs.StringVar(&keywords, "keywords", "", "comma-separated EHLO `keywords` offered, replacing the default set\n(PIPELINING,SIZE,8BITMIME,ENHANCEDSTATUSCODES,DSN,SMTPUTF8,CHUNKING,BINARYMIME);\nunknown keywords such as HELP are offered as given; \"none\" offers none")
	fs.BoolVar(&opts.NoESMTP, "no-esmtp", false, "answer EHLO with 502: HELO only")
	fs.Int64Var(&opts.MaxSize, "size", 0, "message size limit in `octets`, offered with SIZE (0: none)")
	fs.IntVar(&opts.MaxRecipients, "max-recipients", 1000, "recipients per message (at least 100)")
	fs.Var(&replies, "reply", "scripted `rule` STAGE[#N]:PATTERN=CODE [X.Y.Z] TEXT (repeatable)")
	fs.DurationVar(&opts.Delay, "delay", 0, "wait this `long` after keeping each message before answering 250 (a slow next hop)")
	fs.BoolVar(&opts.Strict7Bit, "strict-7bit", false, "reject content with octets > 127 unless BODY=8BITMIME or BINARYMIME was given (554 5.6.0)")
	fs.StringVar(&bare, "bare-newline", "normalize", "bare CR or LF in DATA content: normalize or reject")
	fs.BoolVar(&opts.LenientPipelining, "lenient-pipelining", false, "accept commands sent ahead where RFC 2920 forbids it")
	fs.StringVar(&opts.Dir, "out", "", "`directory` for ID.eml and ID.json captures (created if missing; empty: log only)")
	fs.StringVar(&opts.TranscriptDir, "transcripts", "", "`directory` for per-session transcripts")
	fs.StringVar(&opts.TLSCert, "tls-cert", "", "PEM certificate chain `file`; with --tls-key the sink offers STARTTLS")
	fs.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 0, 0, "") {
		return 2
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "keywords" {
			opts.Keywords = []string{}
			if strings.EqualFold(keywords, "none") {
				return
			}
			for _, k := range strings.Split(keywords, ",") {
				if k = strings.TrimSpace(k); k != "" {
					opts.Keywords = append(opts.Keywords, k)
				}
			}
		}
	})
	switch bare {
	case "normalize":
		opts.BareNewline = smtp.BareNormalize
	case "reject":
		opts.BareNewline = smtp.BareReject
	default:
		fmt.Fprintf(stderr, "ferry sink: --bare-newline %q: want normalize or reject\n", bare)
		return 2
	}
	opts.Rules = replies
	for _, d := range []string{opts.Dir, opts.TranscriptDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			printError(stderr, "sink", err)
			return 1
		}
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	s, err := sink.Start(opts)
	if err != nil {
		printError(stderr, "sink", err)
		return 1
	}
	fmt.Fprintf(stdout, "ferry sink: listening on %s\n", s.Addr())
	<-ctx.Done()
	if err := s.Close(); err != nil {
		printError(stderr, "sink", err)
		return 1
	}
	return 0
}
