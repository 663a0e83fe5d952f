package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ferrymta/ferry/internal/config"
)

// runCheckConfig validates a configuration file, and every file it refers
// to, and prints the effective configuration (the file on top of the
// built-in defaults), only the settings that differ from the defaults
// (-n), or the values of the keys named after the file. Exit status: 0
// valid, 1 errors (one per line on stderr) or an unknown key, 2 usage.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaults := fs.Bool("defaults", false, "print the built-in defaults instead of reading a file")
	quiet := fs.Bool("q", false, "validate only; print nothing when the file is valid")
	nonDefault := fs.Bool("n", false, "print only the settings that differ from the built-in defaults, as \"key = value\" lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry check-config [-q | -n] FILE [KEY...]\n       ferry check-config -defaults [KEY...]\n\n"+
			"Validates FILE, opens and parses every file it names (certificates, keys,\n"+
			"user and password files, CA files), and prints the effective configuration\n"+
			"(FILE on top of the built-in defaults) as TOML; with -n only the settings\n"+
			"that differ from the defaults; with KEYs (\"queue.spool\", a table such as\n"+
			"\"queue\", or \"listener.address\" for every listener) only their values.\n"+
			"Exit status 0 when valid, 1 with every error on standard error as\n"+
			"FILE:LINE: KEY: what was expected.")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	var cfg config.Config
	var keys []string
	switch {
	case *defaults:
		keys = pos
		cfg = config.Default()
	default:
		if !checkArgs(fs, pos, 1, -1, "FILE [KEY...]") {
			return 2
		}
		keys = pos[1:]
		var code int
		if cfg, code = checkConfigFile(pos[0], stderr); code != 0 {
			return code
		}
	}
	for _, k := range keys {
		if fi, err := os.Stat(k); err == nil && !fi.IsDir() {
			fmt.Fprintf(stderr, "ferry check-config: unexpected argument %q\none configuration file at a time; KEYs (such as queue.spool) come after it\n", k)
			return 2
		}
	}
	if *quiet {
		return 0
	}
	switch {
	case len(keys) > 0:
		return printKeys(cfg, keys, stdout, stderr)
	case *nonDefault:
		for _, s := range cfg.NonDefault() {
			fmt.Fprintln(stdout, s)
		}
		return 0
	}
	if err := cfg.WriteTOML(stdout); err != nil {
		fmt.Fprintf(stderr, "ferry check-config: %v\n", err)
		return 1
	}
	return 0
}

// checkConfigFile loads path and checks every file it refers to, printing
// each problem on stderr; the status is 0 when all is well, else 1.
func checkConfigFile(path string, stderr io.Writer) (config.Config, int) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "read config: %v\n", err)
		return config.Config{}, 1
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cfg, 1
	}
	if errs := checkReferencedFiles(cfg, path, config.KeyLines(data)); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		return cfg, 1
	}
	return cfg, 0
}

// printKeys prints the effective value of each key: a string without its
// quotes, anything else as TOML writes it; a table or an option of several
// array elements as "key = value" lines.
func printKeys(cfg config.Config, keys []string, stdout, stderr io.Writer) int {
	for _, k := range keys {
		got := cfg.Lookup(k)
		switch {
		case len(got) == 0:
			fmt.Fprintf(stderr, "ferry check-config: unknown key %q (see \"ferry check-config -defaults\" for every key)\n", k)
			return 1
		case len(got) == 1 && got[0].Key == k || len(got) == 1 && config.KeyName(got[0].Key) == k:
			fmt.Fprintln(stdout, unquote(got[0].Value))
		default:
			for _, s := range got {
				fmt.Fprintln(stdout, s)
			}
		}
	}
	return 0
}

// unquote strips the quotes of a TOML basic string with no escapes.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.Contains(v, `\`) {
		return v[1 : len(v)-1]
	}
	return v
}
