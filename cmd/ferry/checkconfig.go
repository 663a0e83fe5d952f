package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/ferrymta/ferry/internal/config"
)

// runCheckConfig validates a configuration file and prints the effective
// configuration (the file on top of the built-in defaults). Exit status: 0
// valid, 1 errors (one per line on stderr), 2 usage.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaults := fs.Bool("defaults", false, "print the built-in defaults instead of reading a file")
	quiet := fs.Bool("q", false, "validate only; print nothing when the file is valid")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry check-config [-q] FILE\n       ferry check-config -defaults\n\nValidates FILE and prints the effective configuration (FILE on top of the\nbuilt-in defaults) as TOML. Exit status 0 when valid, 1 with every error on\nstandard error as FILE:LINE: KEY: what was expected.")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	var cfg config.Config
	switch {
	case *defaults:
		if !checkArgs(fs, pos, 0, 0, "-defaults") {
			return 2
		}
		cfg = config.Default()
	default:
		if !checkArgs(fs, pos, 1, 1, "FILE") {
			return 2
		}
		var err error
		if cfg, err = config.Load(pos[0]); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if *quiet {
		return 0
	}
	if err := cfg.WriteTOML(stdout); err != nil {
		fmt.Fprintf(stderr, "ferry check-config: %v\n", err)
		return 1
	}
	return 0
}
