package config

import (
	"strconv"
	"strings"
)

// lineIndex maps key paths of a TOML document to the line (from 1) where
// each is defined. Paths are dotted; an element of an array of tables
// carries its index: "listener[1].address". The TOML decoder does not
// export key positions, so this scanner reads the document (already known to
// be valid TOML) line by line: table headers, "key = value" lines, and
// enough of each value (strings, brackets) to skip multi-line arrays and
// strings.
type lineIndex map[string]int

// scanLines builds the index of a valid TOML document.
func scanLines(doc string) lineIndex {
	idx := lineIndex{}
	arrays := map[string]int{} // array-of-tables path → current index
	table := ""
	s := &valueScanner{}
	for n, line := range strings.Split(doc, "\n") {
		lineNo := n + 1
		rest := s.resume(line)
		if s.open() {
			continue
		}
		t := strings.TrimLeft(rest, " \t")
		switch {
		case t == "" || t[0] == '#' || t[0] == '\r':
			continue
		case strings.HasPrefix(t, "[["):
			keys, _ := parseKey(t[2:])
			plain := strings.Join(keys, ".")
			arrays[plain]++
			table = withIndexes(keys, arrays)
			setFirst(idx, table, lineNo)
		case t[0] == '[':
			keys, _ := parseKey(t[1:])
			table = withIndexes(keys, arrays)
			setFirst(idx, table, lineNo)
		default:
			keys, after := parseKey(t)
			if len(keys) == 0 {
				continue
			}
			path := join(table, strings.Join(keys, "."))
			setFirst(idx, path, lineNo)
			if eq := strings.IndexByte(after, '='); eq >= 0 {
				s.scan(after[eq+1:])
			}
		}
	}
	return idx
}

func setFirst(idx lineIndex, path string, line int) {
	if _, ok := idx[path]; !ok {
		idx[path] = line
	}
}

func join(table, key string) string {
	if table == "" {
		return key
	}
	return table + "." + key
}

// withIndexes joins header keys, adding the current index after every
// prefix that is an array of tables ("listener.tls" → "listener[0].tls").
// The last key of an array-of-tables header gets "[n]" with n its count
// so far minus one.
func withIndexes(keys []string, arrays map[string]int) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
		if n, ok := arrays[strings.Join(keys[:i+1], ".")]; ok {
			b.WriteString("[" + strconv.Itoa(n-1) + "]")
		}
	}
	return b.String()
}

// parseKey reads a dotted key (bare, "basic" or 'literal' pieces) from the
// start of s and returns the pieces and the rest of s.
func parseKey(s string) ([]string, string) {
	var keys []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return keys, s
		}
		var k string
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return keys, ""
			}
			k, s = s[1:end], s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return keys, ""
			}
			k, s = s[1:end+1], s[end+2:]
		default:
			end := 0
			for end < len(s) && isBareKeyChar(s[end]) {
				end++
			}
			if end == 0 {
				return keys, s
			}
			k, s = s[:end], s[end:]
		}
		keys = append(keys, k)
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] != '.' {
			return keys, s
		}
		s = s[1:]
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// valueScanner follows TOML values across lines: open multi-line strings
// and unclosed brackets or braces.
type valueScanner struct {
	delim string // `"""` or `'''` while inside a multi-line string
	depth int    // open [ and {
}

func (v *valueScanner) open() bool { return v.delim != "" || v.depth > 0 }

// resume continues a value that spans lines. It returns what is left of the
// line for key parsing: the whole line when no value was open, "" otherwise.
func (v *valueScanner) resume(line string) string {
	if !v.open() {
		return line
	}
	v.scanFrom(line)
	return ""
}

func (v *valueScanner) scan(s string) { v.scanFrom(s) }

func (v *valueScanner) scanFrom(s string) {
	i := 0
	if v.delim != "" {
		end := findClose(s, v.delim)
		if end < 0 {
			return
		}
		v.delim = ""
		i = end
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '#':
			return
		case c == '[' || c == '{':
			v.depth++
			i++
		case c == ']' || c == '}':
			if v.depth > 0 {
				v.depth--
			}
			i++
		case c == '"' || c == '\'':
			q := string(c)
			if strings.HasPrefix(s[i:], q+q+q) {
				end := findClose(s[i+3:], q+q+q)
				if end < 0 {
					v.delim = q + q + q
					return
				}
				i += 3 + end
				continue
			}
			j := i + 1
			for j < len(s) && s[j] != c {
				if c == '"' && s[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		default:
			i++
		}
	}
}

// findClose returns the offset just past the closing delimiter in s, or -1.
// In basic strings a backslash escapes the next character.
func findClose(s, delim string) int {
	for i := 0; i < len(s); i++ {
		if delim[0] == '"' && s[i] == '\\' {
			i++
			continue
		}
		if strings.HasPrefix(s[i:], delim) {
			end := i + len(delim)
			// A closing delimiter may be followed by up to two more quotes
			// that belong to the content.
			for end < len(s) && s[end] == delim[0] && end < i+len(delim)+2 {
				end++
			}
			return end
		}
	}
	return -1
}

// lineOf returns the line of path, or of its nearest ancestor that has one,
// or 0.
func (idx lineIndex) lineOf(path string) int {
	for path != "" {
		if n, ok := idx[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}
