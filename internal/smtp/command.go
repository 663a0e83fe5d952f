package smtp

import (
	"strings"
)

// Command is one parsed command line: the upper-cased verb and the rest.
type Command struct {
	Verb string // upper case, e.g. "MAIL"
	Arg  string // everything after the verb and one space, as sent
}

// SyntaxError is a command, path or parameter that does not follow the
// grammar of RFC 5321 §4.1 (or of the extension that defines it). Msg is a
// short description fit to send to the client, e.g. in "501 5.5.4 <Msg>".
type SyntaxError struct {
	Msg string
}

// Error returns the description prefixed with "smtp: syntax error: ".
func (e *SyntaxError) Error() string { return "smtp: syntax error: " + e.Msg }

// syntaxErr returns a *SyntaxError with the given message.
func syntaxErr(msg string) error { return &SyntaxError{Msg: msg} }

// MaxCommandLine is the longest command line, CRLF included, that RFC 5321
// §4.5.3.1.4 obliges a server to accept; Ferry answers a longer one with
// 500 5.5.2.
const MaxCommandLine = 512

// ParseCommand splits a command line (without CRLF) into verb and argument.
// The verb (RFC 5321 §4.1.1) is case-insensitive and returned upper-cased; it
// must be 1 to 32 ASCII letters or digits. The argument is everything after
// the first space, as sent. A line containing a NUL, CR or LF is an error:
// the caller has already split lines on CRLF, so such a byte can only be an
// attempt to hide a second command.
func ParseCommand(line string) (Command, error) {
	if line == "" {
		return Command{}, syntaxErr("empty command line")
	}
	if strings.ContainsAny(line, "\x00\r\n") {
		return Command{}, syntaxErr("control character in command line")
	}
	verb, arg, _ := strings.Cut(line, " ")
	if verb == "" {
		return Command{}, syntaxErr("command line starts with a space")
	}
	if len(verb) > 32 {
		return Command{}, syntaxErr("command verb too long")
	}
	for i := 0; i < len(verb); i++ {
		if !isAlnum(verb[i]) {
			return Command{}, syntaxErr("invalid character in command verb")
		}
	}
	return Command{Verb: strings.ToUpper(verb), Arg: arg}, nil
}

// ParseMailArg parses the argument of MAIL ("FROM:<path> params"), RFC 5321
// §4.1.1.2. "FROM:" is case-insensitive; spaces between the colon and the
// path (sent by some clients and accepted by Postfix) and trailing spaces are
// tolerated. The path may be the null path "<>". A source route is accepted
// and dropped (RFC 5321 §4.1.2, Appendix C). Non-ASCII UTF-8 in the path is
// accepted; the caller must check Path.IsASCII unless the client gave
// SMTPUTF8 (RFC 6531 §3.4). Parameter values are returned as sent.
func ParseMailArg(arg string) (Path, Params, error) {
	return parsePathArg(arg, "FROM:", true)
}

// ParseRcptArg parses the argument of RCPT ("TO:<path> params"), RFC 5321
// §4.1.1.3. It accepts what ParseMailArg accepts, except that the null path
// is refused and "<Postmaster>" without a domain is allowed.
func ParseRcptArg(arg string) (Path, Params, error) {
	return parsePathArg(arg, "TO:", false)
}

// parsePathArg parses "<prefix><path> params" for MAIL (reverse == true) or
// RCPT.
func parsePathArg(arg, prefix string, reverse bool) (Path, Params, error) {
	s := strings.TrimLeft(arg, " ")
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return Path{}, nil, syntaxErr("expected " + prefix + "<address>")
	}
	s = strings.TrimLeft(s[len(prefix):], " ")
	if s == "" || s[0] != '<' {
		return Path{}, nil, syntaxErr("address must be enclosed in <>")
	}
	end, err := pathEnd(s)
	if err != nil {
		return Path{}, nil, err
	}
	p, err := parsePath(s[:end], reverse)
	if err != nil {
		return Path{}, nil, err
	}
	rest := s[end:]
	if rest != "" && rest[0] != ' ' {
		return Path{}, nil, syntaxErr("missing space after address")
	}
	params, err := ParseParams(rest)
	if err != nil {
		return Path{}, nil, err
	}
	return p, params, nil
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
