package smtp

// This file lists the API the rest of Ferry codes against while the package is
// being written. Each declaration moves to its own file with its
// implementation; the file disappears when empty.

import (
	"bufio"
	"errors"
	"io"
)

// Command is one parsed command line: the upper-cased verb and the rest.
type Command struct {
	Verb string // upper case, e.g. "MAIL"
	Arg  string // everything after the verb and one space, as sent
}

// Param is one ESMTP parameter keyword=value (RFC 5321 §4.1.2 esmtp-param).
type Param struct {
	Key   string // upper case
	Value string // as sent (xtext still encoded); "" when no "=value"
}

// Params are the ESMTP parameters of MAIL or RCPT in the order sent.
type Params []Param

// Extensions is a server's EHLO keyword set: upper-case keyword → its
// parameters as sent (e.g. "SIZE" → "10240000", "AUTH" → "PLAIN LOGIN").
type Extensions map[string]string

// BarePolicy says what the DATA reader does with a bare CR or bare LF in
// content (Postfix's smtpd_forbid_bare_newline).
type BarePolicy int

// Bare CR/LF policies.
const (
	BareNormalize BarePolicy = iota // treat a bare LF or CR as CRLF
	BareReject                      // fail the message with ErrBareNewline
)

// DataOptions configure a DATA reader.
type DataOptions struct {
	MaxSize int64 // 0: no limit; beyond it the rest is drained and ErrTooLarge returned
	Bare    BarePolicy
}

// Errors from the DATA and BDAT readers.
var (
	ErrTooLarge    = errors.New("smtp: message exceeds the size limit")
	ErrBareNewline = errors.New("smtp: bare CR or LF in message content")
)

var errPending = errors.New("smtp: not implemented yet")

// ParseCommand splits a command line (without CRLF) into verb and argument.
func ParseCommand(line string) (Command, error) { return Command{}, errPending }

// ParseMailArg parses the argument of MAIL ("FROM:<path> params").
func ParseMailArg(arg string) (Path, Params, error) { return Path{}, nil, errPending }

// ParseRcptArg parses the argument of RCPT ("TO:<path> params").
func ParseRcptArg(arg string) (Path, Params, error) { return Path{}, nil, errPending }

// ParseEHLOReply reads the extension keywords of an EHLO reply.
func ParseEHLOReply(r Reply) Extensions { return nil }

// ReadReply reads one possibly multi-line reply.
func ReadReply(r *bufio.Reader) (Reply, error) { return Reply{}, errPending }

// NewDataReader returns a reader of DATA content after the 354 reply.
func NewDataReader(r *bufio.Reader, opts DataOptions) io.Reader { return nil }

// NewDataWriter returns a writer that dot-stuffs content.
func NewDataWriter(w io.Writer) io.WriteCloser { return nil }
