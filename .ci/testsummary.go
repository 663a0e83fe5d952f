//go:build ignore

// Command testsummary reads `go test -json` events on stdin, prints the
// usual human-readable output (an "ok"/"FAIL" line per package, and the
// full output of every failed test), and writes a summary file naming
// every failed test (package and test name) with the counts of tests run,
// passed, failed and skipped. It exits 1 when any test or package failed
// (a build failure, a crash or a timeout fails its package even when no
// single test is to blame).
//
// Usage (from .ci/run; the build tag keeps it out of ./... patterns):
//
//	go test -json ./... 2>&1 | go run .ci/testsummary.go -summary FILE
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string
	FailedBuild string
}

// key names one test, or a package when test is "".
type key struct{ pkg, test string }

func (k key) String() string {
	if k.test == "" {
		return k.pkg
	}
	return k.pkg + " " + k.test
}

// tally follows the events of a whole run.
type tally struct {
	out                     io.Writer
	output                  map[key]*strings.Builder // per test and per package
	build                   map[string]*strings.Builder
	running                 map[key]bool
	failedTests             []key
	failedPkgs              []string // packages failing without a failed test of their own
	pkgFailedTest           map[string]bool
	passed, failed, skipped int
}

func newTally(out io.Writer) *tally {
	return &tally{
		out:           out,
		output:        map[key]*strings.Builder{},
		build:         map[string]*strings.Builder{},
		running:       map[key]bool{},
		pkgFailedTest: map[string]bool{},
	}
}

func (t *tally) buf(k key) *strings.Builder {
	b := t.output[k]
	if b == nil {
		b = &strings.Builder{}
		t.output[k] = b
	}
	return b
}

// add takes one event.
func (t *tally) add(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		b := t.build[e.ImportPath]
		if b == nil {
			b = &strings.Builder{}
			t.build[e.ImportPath] = b
		}
		b.WriteString(e.Output)
		fmt.Fprint(t.out, e.Output)
	case "output":
		t.buf(k).WriteString(e.Output)
	case "run":
		t.running[k] = true
	case "pass", "skip", "fail":
		if e.Test == "" {
			t.endPackage(e)
			return
		}
		delete(t.running, k)
		switch e.Action {
		case "pass":
			t.passed++
		case "skip":
			t.skipped++
		case "fail":
			t.failed++
			t.failedTests = append(t.failedTests, k)
			t.pkgFailedTest[e.Package] = true
			fmt.Fprintf(t.out, "=== FAILED %s (%.2fs)\n%s", k, e.Elapsed, t.buf(k).String())
		}
		delete(t.output, k)
	}
}

// endPackage prints a package's result line, as go test does without -json.
func (t *tally) endPackage(e event) {
	pkgOut := t.buf(key{e.Package, ""}).String()
	delete(t.output, key{e.Package, ""})
	switch e.Action {
	case "pass":
		fmt.Fprintf(t.out, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
	case "skip":
		fmt.Fprintf(t.out, "?   \t%s\t[no test files]\n", e.Package)
	case "fail":
		// Tests still running when the package failed (a timeout, a
		// panic, os.Exit) are failures too.
		var stuck []key
		for k := range t.running {
			if k.pkg == e.Package {
				stuck = append(stuck, k)
			}
		}
		sort.Slice(stuck, func(i, j int) bool { return stuck[i].test < stuck[j].test })
		for _, k := range stuck {
			delete(t.running, k)
			t.failed++
			t.failedTests = append(t.failedTests, key{k.pkg, k.test + " (did not finish)"})
			t.pkgFailedTest[e.Package] = true
			fmt.Fprintf(t.out, "=== FAILED %s (did not finish)\n%s", k, t.buf(k).String())
			delete(t.output, k)
		}
		fmt.Fprint(t.out, pkgOut)
		if !t.pkgFailedTest[e.Package] {
			why := "test binary failed"
			if e.FailedBuild != "" {
				why = "build failed: " + e.FailedBuild
			}
			t.failedPkgs = append(t.failedPkgs, e.Package+" ("+why+")")
		}
		if !strings.Contains(pkgOut, "FAIL\t"+e.Package) {
			fmt.Fprintf(t.out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
		}
	}
}

// summary writes the failed tests and the counts.
func (t *tally) summary(w io.Writer) {
	ran := t.passed + t.failed + t.skipped
	fmt.Fprintf(w, "tests: %d ran, %d passed, %d failed, %d skipped\n", ran, t.passed, t.failed, t.skipped)
	if len(t.failedTests) > 0 {
		fmt.Fprintln(w, "failed tests:")
		for _, k := range t.failedTests {
			fmt.Fprintf(w, "  FAIL %s\n", k)
		}
	}
	if len(t.failedPkgs) > 0 {
		fmt.Fprintln(w, "failed packages:")
		for _, p := range t.failedPkgs {
			fmt.Fprintf(w, "  FAIL %s\n", p)
		}
	}
	fmt.Fprintf(w, "counts: %d %d %d\n", t.passed, t.failed+len(t.failedPkgs), t.skipped)
}

func main() {
	summaryFile := flag.String("summary", "", "write the summary to this file (default: stdout)")
	flag.Parse()
	t := newTally(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(os.Stdout, "%s\n", line) // not an event: go's own messages
			continue
		}
		t.add(e)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: reading events: %v\n", err)
		t.failedPkgs = append(t.failedPkgs, "(event stream: "+err.Error()+")")
	}
	for k := range t.running { // the stream ended with tests running
		t.failed++
		t.failedTests = append(t.failedTests, key{k.pkg, k.test + " (did not finish)"})
	}
	w := io.Writer(os.Stdout)
	if *summaryFile != "" {
		f, err := os.Create(*summaryFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testsummary: %v\n", err)
			os.Exit(2)
		}
		defer f.Close()
		w = f
	}
	t.summary(w)
	if t.failed > 0 || len(t.failedPkgs) > 0 {
		if f, ok := w.(*os.File); ok && f != os.Stdout {
			f.Close()
		}
		os.Exit(1)
	}
}
