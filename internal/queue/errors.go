package queue

import (
	"fmt"
	"strings"
)

// prefix starts every error this package returns.
const prefix = "queue: "

// contextErr adds context to an error that already carries the package's
// prefix, without repeating it: "queue: store message X: disk full"
// rather than "queue: store message X: queue: disk full".
type contextErr struct {
	context string
	err     error
}

func (e *contextErr) Error() string {
	return prefix + e.context + ": " + strings.TrimPrefix(e.err.Error(), prefix)
}

func (e *contextErr) Unwrap() error { return e.err }

// wrapf adds the context format/args to err: "queue: CONTEXT: ERR", with
// the package prefix once however deep it sits.
func wrapf(err error, format string, args ...any) error {
	context := fmt.Sprintf(format, args...)
	if strings.HasPrefix(err.Error(), prefix) {
		return &contextErr{context: context, err: err}
	}
	return fmt.Errorf(prefix+"%s: %w", context, err)
}
