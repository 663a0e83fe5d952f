package main

import (
	"fmt"
	"io"
	"strings"
)

// printError prints err for the subcommand name as "ferry NAME: message",
// without the package prefix of the same name that the message may start
// with ("ferry sink: sink: listen tcp …" becomes "ferry sink: listen tcp …").
func printError(stderr io.Writer, name string, err error) {
	fmt.Fprintf(stderr, "ferry %s: %s\n", name, strings.TrimPrefix(err.Error(), name+": "))
}
