package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ferrymta/ferry/internal/auth"
)

const passwdUsage = `Usage: ferry passwd [--argon2id] [--cost N] USER

Reads a password from the first line of standard input (it is echoed when
typed at a terminal) and prints the line to add to the AUTH user file
(docs/auth.md): "USER:HASH", bcrypt by default, argon2id with --argon2id.

Example (type the password, then Enter):
  ferry passwd alice@example.com >> users.txt

Flags:
`

func runPasswd(args []string, stdout, stderr io.Writer) int {
	return passwd(args, os.Stdin, stdout, stderr)
}

// passwd is runPasswd with its input given.
func passwd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	useArgon := fs.Bool("argon2id", false, "hash with argon2id (m=64 MiB, t=3, p=4) instead of bcrypt")
	cost := fs.Int("cost", auth.DefaultBcryptCost, "bcrypt cost, 10..16")
	fs.Usage = func() {
		fmt.Fprint(stderr, passwdUsage)
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 1, 1, "USER") {
		return 2
	}
	user := pos[0]
	if err := auth.CheckUserName(user); err != nil {
		fmt.Fprintf(stderr, "ferry passwd: %v\n", err)
		return 2
	}
	if *cost < 10 || *cost > 16 {
		fmt.Fprintf(stderr, "ferry passwd: --cost %d: want 10..16\n", *cost)
		return 2
	}
	password, err := readPassword(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "ferry passwd: %v\n", err)
		return 1
	}
	var hash string
	if *useArgon {
		hash, err = auth.HashArgon2id(password, auth.DefaultArgon2Params())
	} else {
		hash, err = auth.HashBcrypt(password, *cost)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry passwd: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s:%s\n", user, hash)
	return 0
}

// readPassword returns the first line of r without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("empty password on standard input")
	}
	return line, nil
}
