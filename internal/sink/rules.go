package sink

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Stages at which a Rule can answer.
const (
	StageConnect = "CONNECT" // instead of the greeting; the connection is closed
	StageMail    = "MAIL"    // MAIL FROM, matched against the reverse path
	StageRcpt    = "RCPT"    // RCPT TO, matched against the forward path
	StageData    = "DATA"    // the DATA command (or first BDAT), before any content
	StageEnd     = "END"     // after the content, instead of "250 queued"
)

// Rule is a scripted reply: at Stage, for an address matching Pattern, the
// sink answers Reply instead of accepting.
//
// The text form, for ParseRule and "ferry sink --reply", is
//
//	STAGE[#N]:PATTERN=CODE [X.Y.Z] TEXT
//
// STAGE is CONNECT, MAIL, RCPT, DATA or END. PATTERN is a case-insensitive
// glob ("*" any run of characters, "?" one) matched against the address
// without angle brackets ("<>" for the null reverse path); at DATA and END
// it is tried against the sender and every recipient, and at CONNECT it is
// "*". "#N" limits the rule to its first N matches, after which it no longer
// applies (so "RCPT#1:*=451 4.3.0 later" defers only the first attempt);
// "CONNECT:N" is short for "CONNECT#N:*" (the first N connections). Rules
// are tried in order; the first that applies answers. Examples:
//
//	RCPT:*@bad.example=550 5.1.1 no such user
//	MAIL:*=451 4.3.0 try later
//	END:*=554 5.6.0 content rejected
//	CONNECT:3=421 4.7.0 busy
type Rule struct {
	Stage   string
	Pattern string
	// Count limits the rule to its first Count matches; 0: no limit.
	Count int
	Reply smtp.Reply
}

// String formats the rule in the form ParseRule reads.
func (r Rule) String() string {
	stage := r.Stage
	if r.Count > 0 {
		stage += "#" + strconv.Itoa(r.Count)
	}
	return stage + ":" + r.Pattern + "=" + r.Reply.String()
}

// ParseRule parses a rule in its text form (see Rule).
func ParseRule(s string) (Rule, error) {
	head, reply, ok := strings.Cut(s, "=")
	if !ok {
		return Rule{}, fmt.Errorf("sink: rule %q: want STAGE[#N]:PATTERN=CODE [X.Y.Z] TEXT", s)
	}
	stage, pattern, ok := strings.Cut(head, ":")
	if !ok || pattern == "" {
		return Rule{}, fmt.Errorf("sink: rule %q: want STAGE[#N]:PATTERN before '='", s)
	}
	var r Rule
	stage, count, hasCount := strings.Cut(stage, "#")
	r.Stage = strings.ToUpper(stage)
	switch r.Stage {
	case StageConnect, StageMail, StageRcpt, StageData, StageEnd:
	default:
		return Rule{}, fmt.Errorf("sink: rule %q: stage %q: want CONNECT, MAIL, RCPT, DATA or END", s, stage)
	}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 {
			return Rule{}, fmt.Errorf("sink: rule %q: count %q: want a positive number", s, count)
		}
		r.Count = n
	}
	r.Pattern = pattern
	if r.Stage == StageConnect && pattern != "*" {
		n, err := strconv.Atoi(pattern)
		if err != nil || n < 1 || hasCount {
			return Rule{}, fmt.Errorf("sink: rule %q: CONNECT takes \"*\" or a number of connections", s)
		}
		r.Count, r.Pattern = n, "*"
	}
	rep, err := parseReply(reply)
	if err != nil {
		return Rule{}, fmt.Errorf("sink: rule %q: %w", s, err)
	}
	r.Reply = rep
	return r, nil
}

// parseReply reads "CODE [X.Y.Z] TEXT". The code must be 2xx-5xx; an
// enhanced code must have the reply's class.
func parseReply(s string) (smtp.Reply, error) {
	codeStr, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil || len(codeStr) != 3 || code < 200 || code > 599 {
		return smtp.Reply{}, fmt.Errorf("reply %q: want a three-digit code 200-599 first", s)
	}
	var enh smtp.EnhancedCode
	if first, after, _ := strings.Cut(rest, " "); smtp.EnhancedCode(first).Valid() {
		enh = smtp.EnhancedCode(first)
		if enh.Class() != code/100 {
			return smtp.Reply{}, fmt.Errorf("reply %q: enhanced code %s does not match the class of %d", s, enh, code)
		}
		rest = after
	}
	if strings.ContainsAny(rest, "\r\n") {
		return smtp.Reply{}, fmt.Errorf("reply %q: text may not contain CR or LF", s)
	}
	return smtp.NewReply(code, enh, rest), nil
}

// ruleState is a rule with its match counter.
type ruleState struct {
	Rule
	matched atomic.Int64
}

// answer returns the reply of the first rule of stage that applies to one
// of subjects, counting the match.
func answer(rules []*ruleState, stage string, subjects ...string) *smtp.Reply {
	for _, r := range rules {
		if r.Stage != stage {
			continue
		}
		hit := false
		for _, s := range subjects {
			if glob(strings.ToLower(r.Pattern), strings.ToLower(s)) {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		if n := r.matched.Add(1); r.Count > 0 && n > int64(r.Count) {
			continue
		}
		rep := r.Reply
		return &rep
	}
	return nil
}

// glob reports whether s matches pattern, where "*" matches any run of
// octets and "?" any one.
func glob(pattern, s string) bool {
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
