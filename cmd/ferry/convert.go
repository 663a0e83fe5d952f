package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ferrymta/ferry/internal/downgrade"
)

const convertUsage = `Usage: ferry convert [--report] [--check] [FILE]

Converts the message in FILE (or standard input) to valid 7-bit MIME without
loss and writes it to standard output: 8-bit, binary and over-long lines are
encoded quoted-printable or base64, 8-bit header text becomes RFC 2047
encoded-words, and every byte that need not change is copied as it was.

Exit status:
  0  success; with --check: the message needs no conversion
  1  with --check only: the message needs conversion and it is lossless
  2  error: the message cannot be converted (malformed, or 8-bit addresses
     that need SMTPUTF8), or a usage or I/O error

Flags:
`

func runConvert(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	report := fs.Bool("report", false, "print the conversion report as JSON on standard error")
	check := fs.Bool("check", false, "only check: write no message, tell by the exit status")
	fs.Usage = func() {
		fmt.Fprint(stderr, convertUsage)
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 0, 1, "[FILE]") {
		return 2
	}
	var in io.Reader = os.Stdin
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "ferry convert: %v\n", err)
			return 2
		}
		defer f.Close()
		in = f
	}
	var out io.Writer = io.Discard
	var bw *bufio.Writer
	if !*check {
		bw = bufio.NewWriter(stdout)
		out = bw
	}
	rep, err := downgrade.Convert(out, in, downgrade.Options{})
	if err == nil && bw != nil {
		err = bw.Flush()
	}
	if *report && rep != nil {
		enc := json.NewEncoder(stderr)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil {
			fmt.Fprintf(stderr, "ferry convert: %v\n", jerr)
		}
	}
	if err != nil {
		var de *downgrade.Error
		if errors.As(err, &de) {
			fmt.Fprintf(stderr, "ferry convert: %v (enhanced status %s)\n", err, de.Enhanced())
		} else {
			fmt.Fprintf(stderr, "ferry convert: %v\n", err)
		}
		return 2
	}
	if *check && rep.Changed {
		return 1
	}
	return 0
}
