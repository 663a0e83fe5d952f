package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Error is one configuration error: where it is and what was expected.
// Load and Parse join every Error they find with errors.Join.
type Error struct {
	// File is the configuration file's name as given to Load or Parse.
	File string
	// Line is the line of the offending key (from 1), or 0 when unknown.
	Line int
	// Key is the option, dotted, without array indexes
	// ("listener.max_message_size"); empty for TOML syntax errors.
	Key string
	// Msg says what was expected and what was found.
	Msg string
}

// Error formats the error as "file:line: key: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and validates the TOML file at path on top of Default(). Every
// problem found is reported: the error joins one *Error per problem, in line
// order.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse validates the TOML document data, named name in errors, on top of
// Default(). The error joins one *Error per problem, in line order.
func Parse(name string, data []byte) (Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Config{}, &Error{File: name, Line: errorLine(data, pe.Position), Msg: "TOML syntax: " + pe.Message}
		}
		return Config{}, &Error{File: name, Msg: "TOML: " + err.Error()}
	}
	d := &decoder{file: name, lines: scanLines(string(data))}
	cfg := Default()
	d.root(raw, &cfg)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// errorLine is the line of a syntax error: the line holding the offending
// octet (the decoder counts an error at a newline as the next line's).
func errorLine(data []byte, p toml.Position) int {
	if p.Start >= 0 && p.Start < len(data) {
		return 1 + bytes.Count(data[:p.Start], []byte("\n"))
	}
	return p.Line
}

// decoder turns the decoded TOML tree into a Config, collecting errors.
type decoder struct {
	file  string
	lines lineIndex
	errs  []*Error
}

// errf records an error at path ("listener[0].address").
func (d *decoder) errf(path, format string, args ...any) {
	d.errs = append(d.errs, &Error{
		File: d.file,
		Line: d.lines.lineOf(path),
		Key:  displayKey(path),
		Msg:  fmt.Sprintf(format, args...),
	})
}

// wrong records "want WANT, got VALUE".
func (d *decoder) wrong(path, want string, v any) {
	d.errf(path, "want %s, got %s", want, show(v))
}

// displayKey drops array indexes: "listener[1].address" → "listener.address".
func displayKey(path string) string {
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// show formats a decoded TOML value for an error message.
func show(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case int64, float64, bool:
		return fmt.Sprintf("%v", x)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	default:
		return fmt.Sprintf("%v", x)
	}
}

// field decodes one key's value at path.
type field func(v any, path string)

// table decodes a TOML table with the given fields; other keys are errors.
func (d *decoder) table(v any, path string, fields map[string]field) {
	m, ok := v.(map[string]any)
	if !ok {
		d.wrong(path, "a table", v)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := join(path, k)
		f, ok := fields[k]
		if !ok {
			d.unknown(p, k, fields)
			continue
		}
		f(m[k], p)
	}
}

// unknown records an unknown key with the known ones and a suggestion.
func (d *decoder) unknown(path, key string, fields map[string]field) {
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	best, bestDist := "", 3
	for _, k := range known {
		dist := editDistance(strings.ToLower(key), k)
		if strings.HasPrefix(strings.ToLower(key), k) || strings.HasPrefix(k, strings.ToLower(key)) {
			dist = min(dist, 2)
		}
		if dist < bestDist {
			best, bestDist = k, dist
		}
	}
	msg := "unknown key"
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	d.errf(path, "%s; want one of: %s", msg, strings.Join(known, ", "))
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// tables returns the elements of an array of tables.
func (d *decoder) tables(v any, path string) ([]map[string]any, bool) {
	switch x := v.(type) {
	case []map[string]any:
		return x, true
	case []any:
		out := make([]map[string]any, 0, len(x))
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				d.wrong(fmt.Sprintf("%s[%d]", path, i), "a table", e)
				return nil, false
			}
			out = append(out, m)
		}
		return out, true
	}
	d.wrong(path, fmt.Sprintf("an array of tables ([[%s]])", displayKey(path)), v)
	return nil, false
}

// str stores a string value.
func (d *decoder) str(dst *string, want string) field {
	return func(v any, path string) {
		s, ok := v.(string)
		if !ok {
			d.wrong(path, want, v)
			return
		}
		*dst = s
	}
}

// strCheck stores a string value that check accepts; empty is allowed when
// emptyOK.
func (d *decoder) strCheck(dst *string, want string, emptyOK bool, check func(string) (string, error)) field {
	return func(v any, path string) {
		s, ok := v.(string)
		if !ok {
			d.wrong(path, want, v)
			return
		}
		if s == "" {
			if emptyOK {
				*dst = ""
			} else {
				d.wrong(path, want, v)
			}
			return
		}
		norm, err := check(s)
		if err != nil {
			d.errf(path, "want %s, got %q (%v)", want, s, err)
			return
		}
		*dst = norm
	}
}

// enum stores a string that is one of opts.
func (d *decoder) enum(dst *string, opts ...string) field {
	quoted := make([]string, len(opts))
	for i, o := range opts {
		quoted[i] = fmt.Sprintf("%q", o)
	}
	want := strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	return func(v any, path string) {
		s, ok := v.(string)
		if ok {
			for _, o := range opts {
				if strings.EqualFold(s, o) {
					*dst = o
					return
				}
			}
		}
		d.wrong(path, want, v)
	}
}

// integer stores a whole number in [lo, hi].
func (d *decoder) integer(dst *int, lo, hi int64, want string) field {
	return func(v any, path string) {
		n, ok := v.(int64)
		if !ok || n < lo || n > hi {
			d.wrong(path, want, v)
			return
		}
		*dst = int(n)
	}
}

// size stores a size of at least lo octets.
func (d *decoder) size(dst *int64, lo int64) field {
	want := `a size like "50MB" or a number of octets`
	if lo > 0 {
		want = fmt.Sprintf(`a size of at least %s like "64MiB" or a number of octets`, FormatSize(lo))
	}
	return func(v any, path string) {
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case string:
			var err error
			if n, err = ParseSize(x); err != nil {
				d.wrong(path, want, v)
				return
			}
		default:
			d.wrong(path, want, v)
			return
		}
		if n < lo || n < 0 {
			d.wrong(path, want, v)
			return
		}
		*dst = n
	}
}

// duration stores a duration; zero is allowed only when zeroOK.
func (d *decoder) duration(dst *time.Duration, zeroOK bool) field {
	want := `a duration like "5m", "1h30m" or "5d"`
	if !zeroOK {
		want = `a positive duration like "5m", "1h30m" or "5d"`
	}
	return func(v any, path string) {
		s, ok := v.(string)
		if !ok {
			d.wrong(path, want, v)
			return
		}
		t, err := ParseDuration(s)
		if err != nil || (t == 0 && !zeroOK) {
			d.wrong(path, want, v)
			return
		}
		*dst = t
	}
}

// keywords stores a list of EHLO keywords from KnownKeywords(), upper case,
// without duplicates.
func (d *decoder) keywords(dst *[]string) field {
	known := KnownKeywords()
	want := "a list of EHLO keywords from " + strings.Join(known, ", ")
	return func(v any, path string) {
		list, ok := v.([]any)
		if !ok {
			d.wrong(path, want, v)
			return
		}
		out := make([]string, 0, len(list))
		seen := map[string]bool{}
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				d.wrong(path, want, e)
				return
			}
			kw := strings.ToUpper(s)
			isKnown := false
			for _, k := range known {
				isKnown = isKnown || k == kw
			}
			if !isKnown {
				d.wrong(path, want, s)
				return
			}
			if seen[kw] {
				d.errf(path, "want each keyword once, got %q twice", kw)
				return
			}
			seen[kw] = true
			out = append(out, kw)
		}
		if len(out) == 0 {
			out = nil
		}
		*dst = out
	}
}
