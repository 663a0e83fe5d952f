package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const logUsage = `Usage: ferry log [--file F | --config FILE] ID

Prints a message's whole history from the mail log, in order: every line
that names the queue ID (queued, converted, sent, deferred, bounced,
expired, removed, admin operations, …) and every line of the SMTP session
it arrived on (connect, reject, tls, disconnect), found through the
session= attribute of those lines. Text and JSON log lines both work. The
file is --file, else log.file of the configuration.

Flags:
`

func runLog(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry log", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, logUsage)
		fs.PrintDefaults()
	}
	file := fs.String("file", "", "the mail log `file` (default: log.file of the configuration)")
	configFile := fs.String("config", "", "the server's TOML configuration `file`")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 1, 1, "ID") {
		return 2
	}
	path := *file
	if path == "" {
		cfg, err := loadServeConfig(serveFlags{configFile: *configFile})
		if err != nil {
			fmt.Fprintf(stderr, "ferry log: %v\n", err)
			return 1
		}
		if cfg.Log.File == "" {
			fmt.Fprintln(stderr, "ferry log: the mail log goes to standard error (log.file is not set); give --file")
			return 2
		}
		path = cfg.Log.File
	}
	n, err := grepHistory(path, pos[0], stdout)
	if err != nil {
		fmt.Fprintf(stderr, "ferry log: %v\n", err)
		return 1
	}
	if n == 0 {
		fmt.Fprintf(stderr, "ferry log: no line of %s names %s\n", path, pos[0])
		return 1
	}
	return 0
}

// grepHistory writes the lines of path that name id or one of the sessions
// those lines name, and returns how many it wrote. It reads the file twice:
// a session's first lines come before the queue ID is known.
func grepHistory(path, id string, w io.Writer) (int, error) {
	sessions := map[string]bool{}
	err := scanLines(path, func(line []byte) error {
		if bytesContains(line, id) {
			for _, sess := range sessionsIn(line) {
				sessions[sess] = true
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	err = scanLines(path, func(line []byte) error {
		match := bytesContains(line, id)
		if !match && len(sessions) > 0 {
			for _, sess := range sessionsIn(line) {
				if sessions[sess] {
					match = true
					break
				}
			}
		}
		if !match {
			return nil
		}
		n++
		_, err := fmt.Fprintf(w, "%s\n", line)
		return err
	})
	return n, err
}

// scanLines calls fn with each line of path (without its line end).
func scanLines(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s: a line is longer than 16 MiB: %w", path, err)
		}
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

func bytesContains(line []byte, s string) bool {
	return s != "" && bytes.Contains(line, []byte(s))
}

// sessionsIn returns the session IDs a log line names: session=ID in text
// lines, "session":"ID" in JSON lines.
func sessionsIn(line []byte) []string {
	var out []string
	for _, key := range []string{"session=", `"session":"`} {
		rest := line
		for {
			i := bytes.Index(rest, []byte(key))
			if i < 0 {
				break
			}
			if key == "session=" && i > 0 && rest[i-1] != ' ' {
				rest = rest[i+len(key):]
				continue // e.g. "xsession="
			}
			rest = rest[i+len(key):]
			n := 0
			for n < len(rest) && isSessionChar(rest[n]) {
				n++
			}
			if n > 0 {
				out = append(out, string(rest[:n]))
			}
		}
	}
	return out
}

func isSessionChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}
