// Command ferry is an SMTP relay (smart host) that converts content losslessly
// when a next hop cannot take it as it is. Run "ferry help" for the
// subcommands.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// subcommand is one "ferry NAME" entry point. run receives the arguments
// after the name and returns the process exit status.
type subcommand struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// subcommands lists every subcommand; each lives in its own file.
func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"check-config": {"validate a configuration file and print the effective configuration", runCheckConfig},

		"version": {"print Ferry's version and the Go version", runVersion},
		"serve":   {"run the relay: SMTP listeners, the durable queue and delivery", runServe},
		"sink":    {"run a test SMTP server that plays a next hop and captures mail", runSink},
		"convert": {"convert a message to 7-bit MIME losslessly (a filter)", runConvert},
		"probe":   {"connect to a next hop and show what it offers and what Ferry would do", runProbe},
		"passwd":  {"print a user file line (bcrypt or argon2id hash) for SMTP AUTH", runPasswd},
		"queue":   {"list, show, hold, release, retry, delete or bounce queued messages of a running server", runQueue},
		"explain": {"say in plain words what Ferry would do with a message for a recipient, and why", runExplain},
		"log":     {"print a queued message's whole history from the mail log", runLog},
		"bench":   {"drive an SMTP server with load; count what arrives at a sink", runBench},
		"dkim":    {"make a DKIM key and print the DNS record to publish (dkim keygen)", runDKIM},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := subcommands()
	if len(args) == 0 {
		fmt.Fprintln(stderr, "ferry: missing subcommand")
		usage(stderr, cmds)
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := cmds[args[1]]; ok {
				return c.run([]string{"-h"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "ferry help: unknown subcommand %q\n", args[1])
			usage(stderr, cmds)
			return 2
		}
		usage(stdout, cmds)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "-V" {
		return runVersion(args[1:], stdout, stderr)
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ferry: unknown subcommand %q (see \"ferry help\")\n", args[0])
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]subcommand) {
	fmt.Fprintln(w, "Usage: ferry SUBCOMMAND [flags]\n\nSubcommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun \"ferry SUBCOMMAND -h\" for a subcommand's flags.")
}
