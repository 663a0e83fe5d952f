package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// parseFlags parses args into fs the same way in every subcommand: flags
// may follow positional arguments ("probe HOST --json"), "--" ends the
// flags, and a flag given an empty value (--spool "") is an error, never
// "use the default". It returns the positional arguments; when parsing
// fails (the problem is the first line printed on fs's output) or -h asked
// for help (the flags are printed), ok is false and code is the exit
// status: 2, or 0 after -h.
func parseFlags(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	if name := emptyFlag(fs, args); name != "" {
		fmt.Fprintf(fs.Output(), "%s: --%s: empty value (give a value, or leave the flag out for the default)\n", fs.Name(), name)
		fmt.Fprintf(fs.Output(), "Run \"%s -h\" for the flags.\n", fs.Name())
		return nil, 2, false
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, 0, true
}

// checkArgs reports whether pos holds between min and max positional
// arguments (max < 0: no upper limit); when not, it prints what is wrong
// first, then usage (the arguments' synopsis, e.g. "HOST[:PORT]").
func checkArgs(fs *flag.FlagSet, pos []string, min, max int, usage string) bool {
	switch {
	case max >= 0 && len(pos) > max:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), pos[max])
	case len(pos) < min:
		fmt.Fprintf(fs.Output(), "%s: missing argument: want %s\n", fs.Name(), usage)
	default:
		return true
	}
	fmt.Fprintf(fs.Output(), "Usage: %s [flags] %s (\"%s -h\" for the flags)\n", fs.Name(), usage, fs.Name())
	return false
}

// emptyFlag returns the name of the first flag in args given an empty
// value ("--spool=" or "--spool ”"), or "".
func emptyFlag(fs *flag.FlagSet, args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name := strings.TrimPrefix(a[1:], "-")
		if n, v, ok := strings.Cut(name, "="); ok {
			if v == "" {
				return n
			}
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // the parser names it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			if args[i+1] == "" {
				return name
			}
			i++
		}
	}
	return ""
}
