package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/admin"
)

const queueUsage = `Usage: ferry queue [--admin ADDR | --config FILE | --spool DIR] COMMAND [flags] [ID…]

Shows and changes the queue of a running "ferry serve" through its admin
API. The server is found with --admin, else through the address it wrote
into its spool directory (SPOOL/admin.addr), else admin.address of the
configuration (--config, or the built-in defaults). IDs may be given as
unique prefixes.

Commands:
  list [--hop H] [--sender S] [--rcpt R] [--older 1h] [--state active|deferred|held] [--json]
                       the queue, like mailq ("!" marks a held message)
  show ID [--body] [--json]
                       envelope, recipients with states and attempt history,
                       the next hops' replies, and the transfer plan each
                       next hop would get now
  hold ID…             stop delivering the messages until released
  release ID…          release held messages
  retry ID… | --all | --hop H
                       make messages due now
  delete ID…           remove messages without notice to anyone
  bounce ID…           fail the messages now; their senders get a DSN

Flags:
`

// adminTarget finds the admin API of a running server: the flags shared by
// "ferry queue", "ferry explain" and "ferry log".
type adminTarget struct {
	addr   string
	config string
	spool  string
}

// register adds --admin, --config and --spool to fs.
func (a *adminTarget) register(fs *flag.FlagSet) {
	fs.StringVar(&a.addr, "admin", "", "admin API `address` of the running server (host:port or a Unix socket path)")
	fs.StringVar(&a.config, "config", "", "the server's TOML configuration `file` (default: built-in defaults)")
	fs.StringVar(&a.spool, "spool", "", "the server's spool `directory`")
}

// address returns the admin address: --admin, else the one the server
// recorded in its spool, else the configuration's admin.address.
func (a adminTarget) address() (string, error) {
	if a.addr != "" {
		return a.addr, nil
	}
	cfg, err := loadServeConfig(serveFlags{configFile: a.config, spool: a.spool})
	if err != nil {
		return "", err
	}
	if addr, err := admin.ReadAddrFile(cfg.Queue.Spool); err == nil {
		return addr, nil
	}
	if cfg.Admin.Address == "" {
		return "", admin.ErrOff
	}
	return cfg.Admin.Address, nil
}

// client returns an admin client for the running server.
func (a adminTarget) client() (*admin.Client, error) {
	addr, err := a.address()
	if err != nil {
		return nil, err
	}
	return admin.NewClient(addr), nil
}

// parseInterleaved parses fs from args allowing flags after positional
// arguments ("show ID --body"), and returns the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func runQueue(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry queue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var target adminTarget
	target.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, queueUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	var run func(*admin.Client, []string, io.Writer, io.Writer) int
	switch cmd {
	case "list":
		run = queueList
	case "show":
		run = queueShow
	case "hold", "release", "delete", "bounce":
		run = func(c *admin.Client, args []string, stdout, stderr io.Writer) int {
			return queueAct(c, cmd, args, stdout, stderr)
		}
	case "retry":
		run = queueRetry
	default:
		fmt.Fprintf(stderr, "ferry queue: unknown command %q (want list, show, hold, release, retry, delete or bounce)\n", cmd)
		return 2
	}
	if len(rest) == 1 && (rest[0] == "-h" || rest[0] == "--help") {
		return run(nil, rest, stdout, stderr)
	}
	c, err := target.client()
	if err != nil {
		fmt.Fprintf(stderr, "ferry queue: %v\n", err)
		return 1
	}
	return run(c, rest, stdout, stderr)
}

// queueCtx bounds one admin exchange.
func queueCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

func queueList(c *admin.Client, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry queue list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var q admin.Query
	fs.StringVar(&q.Hop, "hop", "", "only messages with a recipient for this next-hop `domain`")
	fs.StringVar(&q.Sender, "sender", "", "only senders containing this `text`")
	fs.StringVar(&q.Rcpt, "rcpt", "", "only messages with a recipient containing this `text`")
	fs.DurationVar(&q.Older, "older", 0, "only messages at least this `old` (e.g. 1h)")
	fs.StringVar(&q.State, "state", "", "only messages in this `state`: active, deferred or held")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "ferry queue list: unexpected argument %q\n", pos[0])
		return 2
	}
	ctx, cancel := queueCtx()
	defer cancel()
	msgs, err := c.List(ctx, q)
	if err != nil {
		fmt.Fprintf(stderr, "ferry queue: %v\n", err)
		return 1
	}
	if *asJSON {
		return printJSON(stdout, stderr, msgs)
	}
	printList(stdout, msgs, time.Now())
	return 0
}

// printList writes a mailq-like table.
func printList(w io.Writer, msgs []admin.Summary, now time.Time) {
	if len(msgs) == 0 {
		fmt.Fprintln(w, "Queue is empty")
		return
	}
	fmt.Fprintf(w, "%-14s %9s  %-19s  %s\n", "-Queue ID-", "-Size-", "-Arrival Time-", "-Sender/Recipient-------")
	var size int64
	held := 0
	for _, m := range msgs {
		id := m.ID
		if m.Held {
			id += "!"
			held++
		}
		size += m.Size
		fmt.Fprintf(w, "%-14s %9d  %-19s  %s\n", id, m.Size, m.Arrival.Local().Format(time.DateTime), m.Sender)
		for _, r := range m.Rcpts {
			state := r.State
			if r.Attempts > 0 {
				state += fmt.Sprintf(", %d %s", r.Attempts, plural(r.Attempts, "attempt"))
			}
			if !r.Next.IsZero() && (r.State == "deferred" || r.State == "pending") && r.Next.After(now) {
				state += ", next in " + ago(r.Next.Sub(now))
			}
			if r.LeasedBy != "" {
				state += ", leased by " + r.LeasedBy
			}
			fmt.Fprintf(w, "%-14s %9s  %-19s  %-32s (%s)\n", "", "", "", r.Addr, state)
		}
	}
	fmt.Fprintf(w, "-- %d KiB in %d %s", (size+1023)/1024, len(msgs), plural(len(msgs), "message"))
	if held > 0 {
		fmt.Fprintf(w, ", %d held", held)
	}
	fmt.Fprintln(w, ".")
}

func queueShow(c *admin.Client, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry queue show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	body := fs.Bool("body", false, "print the stored message too")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "Usage: ferry queue show ID [--body] [--json]")
		return 2
	}
	ctx, cancel := queueCtx()
	defer cancel()
	m, err := c.Show(ctx, pos[0], *body)
	if err != nil {
		fmt.Fprintf(stderr, "ferry queue: %v\n", err)
		return 1
	}
	if *asJSON {
		return printJSON(stdout, stderr, m)
	}
	printMessage(stdout, m, time.Now())
	return 0
}

func queueAct(c *admin.Client, action string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry queue "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) == 0 {
		fmt.Fprintf(stderr, "Usage: ferry queue %s ID…\n", action)
		return 2
	}
	return actOnIDs(c, action, pos, stdout, stderr)
}

// pastTense is what each action did, for its report line.
func pastTense(action string) string {
	switch action {
	case "hold":
		return "held"
	case "release":
		return "released"
	case "retry":
		return "due for delivery now"
	case "delete":
		return "deleted"
	case "bounce":
		return "bounced (the sender gets a DSN)"
	}
	return action
}

// actOnIDs runs action on each ID, reporting each; the exit status is 1
// when any failed.
func actOnIDs(c *admin.Client, action string, ids []string, stdout, stderr io.Writer) int {
	ctx, cancel := queueCtx()
	defer cancel()
	code := 0
	for _, id := range ids {
		full, err := c.Act(ctx, id, action)
		if err != nil {
			fmt.Fprintf(stderr, "ferry queue: %s: %v\n", id, err)
			var nr *admin.NotRunningError
			if errors.As(err, &nr) {
				return 1
			}
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: %s\n", full, pastTense(action))
	}
	return code
}

func queueRetry(c *admin.Client, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry queue retry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "retry every message that is not held")
	hop := fs.String("hop", "", "retry every message with a recipient for this next-hop `domain`")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	given := 0
	for _, b := range []bool{*all, *hop != "", len(pos) > 0} {
		if b {
			given++
		}
	}
	if given != 1 {
		fmt.Fprintln(stderr, "Usage: ferry queue retry ID… | --all | --hop DOMAIN")
		return 2
	}
	if len(pos) > 0 {
		return actOnIDs(c, "retry", pos, stdout, stderr)
	}
	ctx, cancel := queueCtx()
	defer cancel()
	n, err := c.Retry(ctx, *hop)
	if err != nil {
		fmt.Fprintf(stderr, "ferry queue: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d %s due for delivery now\n", n, plural(n, "message"))
	return 0
}

// flagExit maps a flag parse error to an exit status.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// printJSON writes v indented.
func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return 1
	}
	return 0
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// ago writes a duration for people: "45s", "3 min", "2 h 5 min", "3 days".
func ago(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%d h %d min", h, m)
		}
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// printMessage writes one message for people, like postcat's envelope
// part plus the delivery story.
func printMessage(w io.Writer, m *admin.Message, now time.Time) {
	fmt.Fprintf(w, "Message:   %s", m.ID)
	if m.Held {
		fmt.Fprint(w, " (held)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Arrival:   %s (%s ago)\n", m.Arrival.Local().Format(time.DateTime), ago(now.Sub(m.Arrival)))
	fmt.Fprintf(w, "Size:      %d octets\n", m.Size)
	fmt.Fprintf(w, "Sender:    <%s>\n", strings.TrimSuffix(strings.TrimPrefix(m.Sender, "<"), ">"))
	body := m.Body
	for _, f := range []struct {
		on   bool
		name string
	}{{m.SMTPUTF8, "SMTPUTF8"}, {m.RequireTLS, "REQUIRETLS"}} {
		if f.on {
			body += ", " + f.name
		}
	}
	fmt.Fprintf(w, "Body:      %s\n", body)
	if m.Ret != "" || m.EnvID != "" {
		fmt.Fprintf(w, "DSN:       RET=%s ENVID=%s\n", m.Ret, m.EnvID)
	}
	if cl := m.Client; cl.Addr != "" {
		line := cl.Addr
		if cl.Helo != "" {
			line += " (" + cl.Helo + ")"
		}
		if cl.Protocol != "" {
			line += " with " + cl.Protocol
		}
		if cl.User != "" {
			line += ", user " + cl.User
		}
		fmt.Fprintf(w, "Client:    %s\n", line)
	}
	fmt.Fprintln(w, "Recipients:")
	for _, r := range m.Rcpts {
		state := r.State
		if r.Expired {
			state += " (expired)"
		}
		state += fmt.Sprintf(", %d %s", r.Attempts, plural(r.Attempts, "attempt"))
		if !r.Next.IsZero() && (r.State == "deferred" || r.State == "pending") {
			if r.Next.After(now) {
				state += ", next " + r.Next.Local().Format(time.DateTime) + " (in " + ago(r.Next.Sub(now)) + ")"
			} else {
				state += ", due now"
			}
		}
		fmt.Fprintf(w, "  <%s>  next-hop key %s: %s\n", r.Addr, r.Hop, state)
		if r.Notify != "" || r.ORcpt != "" {
			fmt.Fprintf(w, "      NOTIFY=%s ORCPT=%s\n", r.Notify, r.ORcpt)
		}
		for _, a := range r.History {
			mta := a.RemoteMTA
			if mta == "" {
				mta = "(no connection)"
			}
			fmt.Fprintf(w, "      %s  %-8s %s  %s\n", a.At.Local().Format(time.DateTime), a.State, mta, a.Reply)
		}
	}
	if len(m.Plans) > 0 {
		fmt.Fprintln(w, "Transfer plan now (from the hop-capability cache):")
		for _, p := range m.Plans {
			fmt.Fprintf(w, "  %s via route %s\n", p.Hop, p.Route)
			switch {
			case p.Note != "":
				if p.NextHop != "" {
					fmt.Fprintf(w, "      next hop %s: %s\n", p.NextHop, p.Note)
				} else {
					fmt.Fprintf(w, "      %s\n", p.Note)
				}
			case p.Reply != "":
				fmt.Fprintf(w, "      next hop %s (seen %s ago): would fail at once: %s\n", p.NextHop, ago(now.Sub(p.Seen)), p.Reply)
			default:
				fmt.Fprintf(w, "      next hop %s (seen %s ago): %s\n", p.NextHop, ago(now.Sub(p.Seen)), p.Plan)
			}
		}
	}
	if m.Content != nil {
		fmt.Fprintln(w, "Content:")
		w.Write(m.Content)
		if len(m.Content) > 0 && m.Content[len(m.Content)-1] != '\n' {
			fmt.Fprintln(w)
		}
	}
}
