package downgrade

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

func asError(err error, target **Error) bool { return errors.As(err, target) }

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// rawCharset hands unknown-8bit (and any charset) text through as it is.
func rawCharset(charset string, r io.Reader) (io.Reader, error) { return r, nil }
