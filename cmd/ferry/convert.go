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
A message that is 7-bit already (no octet above 127, no NUL, no bare CR or
LF, no line over 998 octets) is copied unchanged, as the relay sends it.

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
	name := "" // standard input
	if len(pos) == 1 && pos[0] != "-" {
		name = pos[0]
	}
	in, err := convertInput(name)
	if err != nil {
		fmt.Fprintf(stderr, "ferry convert: %v\n", err)
		return 2
	}
	defer in.Close()
	var out io.Writer = io.Discard
	var bw *bufio.Writer
	if !*check {
		bw = bufio.NewWriter(stdout)
		out = bw
	}
	var cv downgrade.Converter
	rep, _, err := cv.ConvertIfNeeded(out, in)
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

// convertInput opens the message: the named file, or for "" standard
// input copied to a temporary file, since the message is read twice (a
// scan, then the conversion if it needs one). Closing it removes that
// copy.
func convertInput(name string) (io.ReadSeekCloser, error) {
	if name != "" {
		return os.Open(name)
	}
	f, err := os.CreateTemp("", "ferry-convert-*")
	if err != nil {
		return nil, fmt.Errorf("buffering standard input: %w", err)
	}
	tf := &tempFile{f}
	if _, err := io.Copy(f, os.Stdin); err != nil {
		tf.Close()
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		tf.Close()
		return nil, fmt.Errorf("buffering standard input: %w", err)
	}
	return tf, nil
}

// tempFile is a temporary file that is removed when closed.
type tempFile struct{ *os.File }

func (t *tempFile) Close() error {
	err := t.File.Close()
	os.Remove(t.Name())
	return err
}
