package downgrade

import (
	"errors"
	"strings"
)

// isAddressField reports the address fields (RFC 5322 §3.4, §3.6.2,
// §3.6.3, §3.6.6, and common extensions) whose display names and comments
// may carry encoded-words (RFC 2047 §5 rules 2 and 3).
func isAddressField(lname string) bool {
	switch lname {
	case "from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender",
		"resent-to", "resent-cc", "resent-bcc", "disposition-notification-to",
		"mail-followup-to", "mail-reply-to":
		return true
	}
	return false
}

// isStructuredField reports fields whose syntax leaves no room for
// encoded-words where 8-bit text could sit (RFC 2047 §5: not in
// addr-specs, message IDs, dates, MIME parameters, trace fields).
func isStructuredField(lname string) bool {
	switch lname {
	case "return-path", "received", "date", "resent-date", "message-id", "resent-message-id",
		"in-reply-to", "references", "mime-version", "content-type",
		"content-transfer-encoding", "content-id", "content-disposition", "content-language",
		"content-location", "content-md5", "keywords", "dkim-signature", "arc-seal",
		"arc-message-signature", "arc-authentication-results", "authentication-results",
		"received-spf", "list-id", "list-unsubscribe", "list-post", "list-help",
		"list-subscribe", "list-owner", "list-archive", "original-recipient",
		"final-recipient", "original-message-id", "autocrypt":
		return true
	}
	return false
}

// errAddr8bit reports 8-bit text in an addr-spec.
var errAddr8bit = errors.New("8-bit octet in an address")

// token is one lexical element of an address list.
type token struct {
	kind byte // 'w' white space, 'c' comment, 'q' quoted string, 'a' angle-addr, 's' special, 't' atom
	b    []byte
}

// tokenize splits an address-list body into tokens; it never fails
// (unterminated comments, quotes and angle-addrs run to the end).
func tokenize(v []byte) []token {
	var toks []token
	for i := 0; i < len(v); {
		c := v[i]
		j := i + 1
		kind := byte('t')
		switch {
		case isWSP(c):
			kind = 'w'
			for j < len(v) && isWSP(v[j]) {
				j++
			}
		case c == '(':
			kind = 'c'
			depth := 1
			for ; j < len(v) && depth > 0; j++ {
				switch v[j] {
				case '\\':
					j++
				case '(':
					depth++
				case ')':
					depth--
				}
			}
		case c == '"':
			kind = 'q'
			for ; j < len(v); j++ {
				if v[j] == '\\' {
					j++
				} else if v[j] == '"' {
					j++
					break
				}
			}
		case c == '<':
			kind = 'a'
			for j < len(v) && v[j] != '>' {
				j++
			}
			if j < len(v) {
				j++
			}
		case strings.IndexByte(",:;@.>", c) >= 0:
			kind = 's'
		default:
			for j < len(v) && !isWSP(v[j]) && strings.IndexByte(`,:;@.<>()"`, v[j]) < 0 {
				j++
			}
		}
		j = min(j, len(v))
		toks = append(toks, token{kind, v[i:j]})
		i = j
	}
	return toks
}

// encodeAddressList rewrites an address-list body: display names and
// comments with 8-bit text become encoded-words; an 8-bit octet in an
// addr-spec (or anywhere else) yields errAddr8bit.
func encodeAddressList(v []byte, cs string) ([]byte, error) {
	toks := tokenize(v)
	var out []byte
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && !(toks[i].kind == 's' && strings.IndexByte(",:;", toks[i].b[0]) >= 0) {
			continue
		}
		run := toks[start:i]
		group := i < len(toks) && toks[i].b[0] == ':'
		angle := -1
		for k, t := range run {
			if t.kind == 'a' {
				angle = k
				break
			}
		}
		var err error
		switch {
		case angle >= 0:
			out, err = appendPhrase(out, run[:angle], cs)
			if err == nil {
				out, err = appendAddrSpec(out, run[angle:], cs)
			}
		case group:
			out, err = appendPhrase(out, run, cs)
		default:
			out, err = appendAddrSpec(out, run, cs)
		}
		if err != nil {
			return nil, err
		}
		if i < len(toks) {
			out = append(out, toks[i].b...)
		}
		start = i + 1
	}
	return out, nil
}

// appendComment appends a comment, its text encoded when it is 8-bit.
func appendComment(out, c []byte, cs string) []byte {
	if !has8bit(c) {
		return append(out, c...)
	}
	inner := c[1:]
	closed := len(inner) > 0 && inner[len(inner)-1] == ')'
	if closed {
		inner = inner[:len(inner)-1]
	}
	out = append(out, '(')
	out = append(out, encodeText(unescape(inner), cs)...)
	if !closed {
		return out // an unterminated comment stays one
	}
	return append(out, ')')
}

// appendAddrSpec appends tokens of an addr-spec or angle-addr, in which
// only comments may be encoded.
func appendAddrSpec(out []byte, run []token, cs string) ([]byte, error) {
	return appendCommentsOnly(out, run, cs, errAddr8bit)
}

// appendCommentsOnly appends tokens in which only comments may carry
// encoded-words: 8-bit text anywhere else yields errKind.
func appendCommentsOnly(out []byte, run []token, cs string, errKind error) ([]byte, error) {
	for _, t := range run {
		switch {
		case t.kind == 'c':
			out = appendComment(out, t.b, cs)
		case has8bit(t.b):
			return nil, errKind
		default:
			out = append(out, t.b...)
		}
	}
	return out, nil
}

// appendPhrase appends a display name: each stretch of words between
// comments that holds 8-bit text becomes encoded-words. Quoted strings are
// unquoted first (encoded-words may not stand inside them) and their
// content is taken literally; an encoded-word among the atoms stays as it
// is (see encodeRun).
func appendPhrase(out []byte, run []token, cs string) ([]byte, error) {
	for len(run) > 0 {
		if run[0].kind == 'c' {
			out = appendComment(out, run[0].b, cs)
			run = run[1:]
			continue
		}
		k := 0
		for k < len(run) && run[k].kind != 'c' {
			k++
		}
		words := run[:k]
		run = run[k:]
		eight := false
		for _, t := range words {
			if has8bit(t.b) {
				eight = true
			}
		}
		if !eight {
			for _, t := range words {
				out = append(out, t.b...)
			}
			continue
		}
		// Leading and trailing white space stays outside the words.
		for len(words) > 0 && words[0].kind == 'w' {
			out = append(out, words[0].b...)
			words = words[1:]
		}
		var trail []byte
		for len(words) > 0 && words[len(words)-1].kind == 'w' {
			trail = append(append([]byte{}, words[len(words)-1].b...), trail...)
			words = words[:len(words)-1]
		}
		var ps []piece
		for _, t := range words {
			switch t.kind {
			case 'q':
				inner := t.b[1:]
				if len(inner) > 0 && inner[len(inner)-1] == '"' {
					inner = inner[:len(inner)-1]
				}
				ps = append(ps, piece{'t', unescape(inner)})
			case 'a':
				return nil, errAddr8bit
			case 'w':
				ps = append(ps, piece{'w', t.b})
			default:
				ps = append(ps, splitPieces(t.b)...)
			}
		}
		if len(out) > 0 && !isWSP(out[len(out)-1]) {
			out = append(out, ' ')
		}
		out = append(out, encodeRun(ps, false, false, cs)...)
		if len(trail) > 0 {
			out = append(out, trail...)
		} else if len(run) > 0 {
			out = append(out, ' ')
		}
	}
	return out, nil
}

// errStructured8bit reports 8-bit text in a structured field outside a
// comment, where no encoded-word may stand.
var errStructured8bit = errors.New("8-bit octet in a structured field")

// encodeKeywords rewrites a Keywords body, a list of phrases (RFC 5322
// §3.6.5): each phrase with 8-bit text becomes encoded-words.
func encodeKeywords(v []byte, cs string) ([]byte, error) {
	toks := tokenize(v)
	var out []byte
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && !(toks[i].kind == 's' && toks[i].b[0] == ',') {
			continue
		}
		var err error
		if out, err = appendPhrase(out, toks[start:i], cs); err != nil {
			return nil, err
		}
		if i < len(toks) {
			out = append(out, ',')
		}
		start = i + 1
	}
	return out, nil
}

// encodeComments rewrites a structured field body in which only comments
// may carry encoded-words (RFC 2047 §5 rule 2: Date, Received, Message-ID
// and the like); 8-bit text elsewhere yields errStructured8bit.
func encodeComments(v []byte, cs string) ([]byte, error) {
	return appendCommentsOnly(nil, tokenize(v), cs, errStructured8bit)
}

// unescape removes quoted-pair backslashes (RFC 5322 §3.2.1).
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
		}
		out = append(out, b[i])
	}
	return out
}

func trimLeftWSP(b []byte) []byte {
	for len(b) > 0 && isWSP(b[0]) {
		b = b[1:]
	}
	return b
}

func trimRightWSP(b []byte) []byte {
	for len(b) > 0 && isWSP(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
