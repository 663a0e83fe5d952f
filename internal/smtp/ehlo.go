package smtp

import (
	"slices"
	"strconv"
	"strings"
)

// Extensions is a server's EHLO keyword set: upper-case keyword → its
// parameters as sent (e.g. "SIZE" → "10240000", "AUTH" → "PLAIN LOGIN").
type Extensions map[string]string

// ParseEHLOReply reads the extension keywords of an EHLO reply (RFC 5321
// §4.1.1.1): every line after the first is "keyword [params]". Keywords are
// upper-cased, parameters kept as sent with surrounding spaces trimmed. The
// pre-standard form "AUTH=LOGIN PLAIN" that some old servers send is read as
// AUTH when no plain AUTH line is present. Lines that are not an
// ehlo-keyword are skipped. A reply that is not 250 has no extensions.
func ParseEHLOReply(r Reply) Extensions {
	ext := Extensions{}
	if r.Code != CodeOK || len(r.Lines) < 2 {
		return ext
	}
	var oldAuth string
	haveOldAuth := false
	for _, line := range r.Lines[1:] {
		line = strings.Trim(line, " \t")
		kw, params, _ := strings.Cut(line, " ")
		params = strings.Trim(params, " \t")
		if len(kw) > 5 && strings.EqualFold(kw[:5], "AUTH=") {
			oldAuth = strings.TrimSpace(kw[5:] + " " + params)
			haveOldAuth = true
			continue
		}
		if !validKeyword(kw) {
			continue
		}
		kw = strings.ToUpper(kw)
		if _, dup := ext[kw]; dup {
			continue // keep the first
		}
		ext[kw] = params
	}
	if _, ok := ext["AUTH"]; !ok && haveOldAuth {
		ext["AUTH"] = oldAuth
	}
	return ext
}

// Has reports whether the keyword was offered; k is compared
// case-insensitively.
func (e Extensions) Has(k string) bool {
	_, ok := e[strings.ToUpper(k)]
	return ok
}

// Param returns the keyword's parameters as sent, "" when it has none or
// was not offered.
func (e Extensions) Param(k string) string { return e[strings.ToUpper(k)] }

// Size returns the SIZE limit the server declared (RFC 1870 §4), or 0 when
// it offered no SIZE, no number, or 0 (all meaning no fixed limit).
func (e Extensions) Size() int64 {
	p, ok := e["SIZE"]
	if !ok {
		return 0
	}
	f, _, _ := strings.Cut(p, " ")
	n, err := strconv.ParseInt(f, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// AuthMechanisms returns the SASL mechanisms of the AUTH keyword (RFC 4954
// §3), upper-cased, in the order offered; nil when AUTH was not offered.
func (e Extensions) AuthMechanisms() []string {
	p, ok := e["AUTH"]
	if !ok {
		return nil
	}
	var mechs []string
	for _, m := range strings.Fields(p) {
		mechs = append(mechs, strings.ToUpper(m))
	}
	return mechs
}

// Keywords returns the offered keywords in sorted order, for logs and the
// hop-capability cache.
func (e Extensions) Keywords() []string {
	ks := make([]string, 0, len(e))
	for k := range e {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// NewEHLOReply builds our 250 reply to EHLO (RFC 5321 §4.1.1.1): the first
// line is the hostname, optionally followed by greeting text, then one line
// per keyword in the order given, each "KEYWORD" or "KEYWORD params" (e.g.
// "SIZE 10240000"). Enhanced status codes are not used on EHLO replies.
func NewEHLOReply(hostname, greeting string, keywords []string) Reply {
	first := hostname
	if greeting != "" {
		first += " " + greeting
	}
	lines := make([]string, 0, len(keywords)+1)
	lines = append(lines, first)
	lines = append(lines, keywords...)
	return Reply{Code: CodeOK, Lines: lines}
}
