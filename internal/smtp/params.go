package smtp

import (
	"strings"
	"unicode/utf8"
)

// Param is one ESMTP parameter keyword=value (RFC 5321 §4.1.2 esmtp-param).
type Param struct {
	Key   string // upper case
	Value string // as sent (xtext still encoded); "" when no "=value"
}

// Params are the ESMTP parameters of MAIL or RCPT in the order sent.
type Params []Param

// Get returns the value of the parameter with the given keyword, compared
// case-insensitively, and whether it was present.
func (ps Params) Get(key string) (value string, ok bool) {
	for _, p := range ps {
		if strings.EqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// Has reports whether the parameter with the given keyword is present.
func (ps Params) Has(key string) bool {
	_, ok := ps.Get(key)
	return ok
}

// IsASCII reports whether every keyword and value is ASCII. A value that is
// not may only be used when the client gave SMTPUTF8 (RFC 6531 §3.3).
func (ps Params) IsASCII() bool {
	for _, p := range ps {
		if !isASCII(p.Key) || !isASCII(p.Value) {
			return false
		}
	}
	return true
}

// String formats the parameters as sent on the wire, each preceded by a
// space, e.g. " SIZE=1000 BODY=8BITMIME"; "" when there are none.
func (ps Params) String() string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteByte(' ')
		b.WriteString(p.Key)
		if p.Value != "" {
			b.WriteByte('=')
			b.WriteString(p.Value)
		}
	}
	return b.String()
}

// ParseParams parses the ESMTP parameters that follow a path (RFC 5321
// §4.1.2): esmtp-param *(SP esmtp-param), where esmtp-param is
// esmtp-keyword ["=" esmtp-value]. The keyword is (ALPHA / DIGIT) *(ALPHA /
// DIGIT / "-"); the value is one or more octets %d33-60 / %d62-126, or
// non-ASCII UTF-8 (RFC 6531 §3.3). Leading, trailing and repeated spaces
// are tolerated. Keywords are upper-cased; a keyword given twice is an
// error.
func ParseParams(s string) (Params, error) {
	var ps Params
	for field := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ' ' }) {
		key, value, hasValue := strings.Cut(field, "=")
		if !validKeyword(key) {
			return nil, syntaxErr("bad parameter keyword " + quoteForText(key))
		}
		key = strings.ToUpper(key)
		if hasValue && !validParamValue(value) {
			return nil, syntaxErr("bad value for parameter " + key)
		}
		if ps.Has(key) {
			return nil, syntaxErr("duplicate parameter " + key)
		}
		ps = append(ps, Param{Key: key, Value: value})
	}
	return ps, nil
}

// validKeyword reports whether s is an esmtp-keyword.
func validKeyword(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// validParamValue reports whether s is an esmtp-value: no '=', SP or CTL.
func validParamValue(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c == '=' || c == 127 {
			return false
		}
	}
	return true
}

// quoteForText returns s for use in reply text: at most 32 octets of
// printable ASCII, the rest shown as '?'.
func quoteForText(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 32 || c > 126 {
			b[i] = '?'
		}
	}
	return "\"" + string(b) + "\""
}
