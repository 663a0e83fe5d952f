package smtp

import (
	"strconv"
	"strings"
)

// EnhancedCode is an enhanced mail system status code "class.subject.detail"
// (RFC 3463, registry in RFC 5248), such as "5.1.1". The empty value means
// none.
type EnhancedCode string

// Reply is one SMTP reply (RFC 5321 §4.2): a three-digit code, an optional
// enhanced status code (RFC 2034) and one or more text lines.
type Reply struct {
	Code     int
	Enhanced EnhancedCode
	Lines    []string
}

// NewReply returns a reply with the given code, enhanced code and text lines.
func NewReply(code int, enhanced EnhancedCode, lines ...string) Reply {
	return Reply{Code: code, Enhanced: enhanced, Lines: lines}
}

// Positive reports whether the reply is a 2xx or 3xx reply.
func (r Reply) Positive() bool { return r.Code >= 200 && r.Code < 400 }

// Temporary reports whether the reply is a transient negative reply (4xx).
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports whether the reply is a permanent negative reply (5xx).
func (r Reply) Permanent() bool { return r.Code >= 500 && r.Code < 600 }

// Text returns the reply's lines joined by a single space, without the
// enhanced code.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// String formats the reply on one line for logs, e.g.
// "550 5.1.1 User unknown".
func (r Reply) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if r.Enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(string(r.Enhanced))
	}
	if t := r.Text(); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	return b.String()
}
