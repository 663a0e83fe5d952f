package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/admin"
)

const queueUsage = `Usage: ferry queue COMMAND [flags] [ID…]

Shows and changes the queue of "ferry serve", running or not. The queue is
the server at --admin ADDR alone, else the spool (--spool DIR, else
queue.spool of the configuration: --config FILE, $FERRY_CONFIG or
/etc/ferry/ferry.toml): the server that recorded its address in the spool
answers, and when no server runs on the spool, list, show, hold, release
and delete work on the spool directly, holding its lock (as postsuper does
while Postfix is down). No other server is ever tried; the first line on
standard error names the one that answered.

To change a message, give its full ID or a unique prefix of at least 8
characters ("show" takes any unique prefix).

Commands:
  list [--hop H] [--sender S] [--rcpt R] [--older 1h] [--state active|deferred|held] [--json]
                       the queue, like mailq, with each recipient's last
                       reply ("!" marks a held message)
  show ID [--body] [--json]
                       envelope, recipients with states and attempt history,
                       the next hops' replies, and the transfer plan each
                       next hop would get now
  hold ID… | --all | --hop H | -
                       stop delivering the messages until released
  release ID… | --all | --hop H | -
                       release held messages
  retry ID… | --all | --hop H | -
                       make messages due now (needs the running server)
  delete ID… | --all | --hop H | -
                       remove messages without notice to anyone
  bounce ID… | --all | --hop H | -
                       fail the messages now; their senders get a DSN
                       (needs the running server)
"-" reads IDs from standard input, one per line (the first word of each).

Flags (of every command):
`

// queueCommands are the "ferry queue" commands.
var queueCommands = []string{"list", "show", "hold", "release", "retry", "delete", "bounce"}

func runQueue(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry queue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var target adminTarget
	target.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, queueUsage)
		fs.PrintDefaults()
	}
	// The target flags may come before the command too ("ferry queue
	// --spool DIR list").
	if name := emptyFlag(fs, args); name != "" {
		fmt.Fprintf(stderr, "ferry queue: --%s: empty value (give a value, or leave the flag out for the default)\n", name)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "ferry queue: missing command: want one of "+strings.Join(queueCommands, ", "))
		fmt.Fprintln(stderr, `Run "ferry queue -h" for the commands and flags.`)
		return 2
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if !slices.Contains(queueCommands, cmd) {
		fmt.Fprintf(stderr, "ferry queue: unknown command %q (want %s)\n", cmd, strings.Join(queueCommands, ", "))
		return 2
	}
	sub := flag.NewFlagSet("ferry queue "+cmd, flag.ContinueOnError)
	sub.SetOutput(stderr)
	target.register(sub)
	qc := queueCall{target: &target, stdout: stdout, stderr: stderr, stdin: os.Stdin}
	switch cmd {
	case "list":
		return qc.list(sub, rest)
	case "show":
		return qc.show(sub, rest)
	}
	return qc.act(sub, cmd, rest)
}

// queueCall is one "ferry queue" command being run.
type queueCall struct {
	target         *adminTarget
	stdout, stderr io.Writer
	stdin          io.Reader
}

// queueCtx bounds one admin exchange.
func queueCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// withClient connects to the queue (see adminTarget.connect) and runs fn.
func (qc queueCall) withClient(fn func(context.Context, *admin.Client) int) int {
	ctx, cancel := queueCtx()
	defer cancel()
	c, closeQ, err := qc.target.connect(ctx, true, qc.stderr)
	if err != nil {
		fmt.Fprintf(qc.stderr, "ferry queue: %v\n", err)
		return 1
	}
	defer closeQ()
	return fn(ctx, c)
}

// output reports err (status 1), else prints v as JSON with --json, else
// for people with human.
func (qc queueCall) output(err error, asJSON bool, v any, human func()) int {
	if err != nil {
		fmt.Fprintf(qc.stderr, "ferry queue: %v\n", err)
		return 1
	}
	if asJSON {
		return printJSON(qc.stdout, qc.stderr, v)
	}
	human()
	return 0
}

func (qc queueCall) list(fs *flag.FlagSet, args []string) int {
	var q admin.Query
	fs.StringVar(&q.Hop, "hop", "", "only messages with a recipient for this next-hop `domain`")
	fs.StringVar(&q.Sender, "sender", "", "only senders containing this `text`")
	fs.StringVar(&q.Rcpt, "rcpt", "", "only messages with a recipient containing this `text`")
	fs.DurationVar(&q.Older, "older", 0, "only messages at least this `old` (e.g. 1h)")
	fs.StringVar(&q.State, "state", "", "only messages in this `state`: active, deferred or held")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 0, 0, "") {
		return 2
	}
	return qc.withClient(func(ctx context.Context, c *admin.Client) int {
		msgs, err := c.List(ctx, q)
		return qc.output(err, *asJSON, msgs, func() { printList(qc.stdout, msgs, time.Now()) })
	})
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
			if r.LastReply != "" {
				reply := r.LastReply
				if r.RemoteMTA != "" {
					reply = r.RemoteMTA + " said: " + reply
				}
				fmt.Fprintf(w, "%-14s %9s  %-19s    (%s)\n", "", "", "", reply)
			}
		}
	}
	fmt.Fprintf(w, "-- %d KiB in %d %s", (size+1023)/1024, len(msgs), plural(len(msgs), "message"))
	if held > 0 {
		fmt.Fprintf(w, ", %d held", held)
	}
	fmt.Fprintln(w, ".")
}

func (qc queueCall) show(fs *flag.FlagSet, args []string) int {
	body := fs.Bool("body", false, "print the stored message too")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 1, 1, "ID") {
		return 2
	}
	return qc.withClient(func(ctx context.Context, c *admin.Client) int {
		m, err := c.Show(ctx, pos[0], *body)
		return qc.output(err, *asJSON, m, func() { printMessage(qc.stdout, m, time.Now()) })
	})
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

// act runs a state change (hold, release, retry, delete, bounce) on the
// messages named by IDs (with "-": read from stdin), --all or --hop.
func (qc queueCall) act(fs *flag.FlagSet, action string, args []string) int {
	all := fs.Bool("all", false, "every message in the queue (retry: every message not held)")
	hop := fs.String("hop", "", "every message with a recipient for this next-hop `domain`")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	given := 0
	for _, b := range []bool{*all, *hop != "", len(pos) > 0} {
		if b {
			given++
		}
	}
	if given != 1 {
		fmt.Fprintf(qc.stderr, "ferry queue %s: give message IDs (\"-\": from standard input), --all or --hop DOMAIN: exactly one of them\n", action)
		fmt.Fprintf(qc.stderr, "Usage: ferry queue %s ID… | --all | --hop DOMAIN | -\n", action)
		return 2
	}
	ids, err := expandIDs(pos, qc.stdin)
	if err != nil {
		fmt.Fprintf(qc.stderr, "ferry queue %s: %v\n", action, err)
		return 2
	}
	return qc.withClient(func(ctx context.Context, c *admin.Client) int {
		if action == "retry" && len(ids) == 0 {
			n, err := c.Retry(ctx, *hop)
			if err != nil {
				fmt.Fprintf(qc.stderr, "ferry queue: %v\n", err)
				return 1
			}
			fmt.Fprintf(qc.stdout, "%d %s due for delivery now\n", n, plural(n, "message"))
			return 0
		}
		if len(ids) == 0 { // --all or --hop: what the listing shows now
			msgs, err := c.List(ctx, admin.Query{Hop: *hop})
			if err != nil {
				fmt.Fprintf(qc.stderr, "ferry queue: %v\n", err)
				return 1
			}
			for _, m := range msgs {
				ids = append(ids, m.ID)
			}
			if len(ids) == 0 {
				fmt.Fprintln(qc.stdout, "no messages")
				return 0
			}
		}
		return actOnIDs(ctx, c, action, ids, qc.stdout, qc.stderr)
	})
}

// expandIDs replaces "-" in ids by the IDs on r: the first word of each
// non-empty line.
func expandIDs(ids []string, r io.Reader) ([]string, error) {
	var out []string
	read := false
	for _, id := range ids {
		if id != "-" {
			out = append(out, id)
			continue
		}
		if read {
			return nil, errors.New(`"-" given twice`)
		}
		read = true
		sc := bufio.NewScanner(r)
		n := 0
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 {
				out = append(out, f[0])
				n++
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading IDs from standard input: %w", err)
		}
		if n == 0 {
			return nil, errors.New("no IDs on standard input")
		}
	}
	return out, nil
}

// actOnIDs runs action on each ID, reporting each; the exit status is 1
// when any failed.
func actOnIDs(ctx context.Context, c *admin.Client, action string, ids []string, stdout, stderr io.Writer) int {
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
	}{{m.SMTPUTF8, "SMTPUTF8"}, {m.RequireTLS, "REQUIRETLS"}, {m.TLSOptional, "TLS-Required: No"}} {
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
	if m.AuthResults != "" {
		fmt.Fprintf(w, "Verified:  %s\n", m.AuthResults)
	} else {
		fmt.Fprintln(w, "Verified:  not checked at receipt")
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
