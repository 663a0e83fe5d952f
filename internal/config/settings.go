package config

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Setting is one effective option: its key path, dotted, with the index
// of each array-of-tables element ("queue.spool", "listener[0].address"),
// and its value as TOML writes it ("\"/var/spool/ferry\"", "10", "[]").
type Setting struct {
	Key   string
	Value string
}

// String formats the setting as "key = value", as "ferry check-config -n"
// prints it.
func (s Setting) String() string { return s.Key + " = " + s.Value }

// Settings lists every option of c in the order WriteTOML writes them.
func (c Config) Settings() []Setting {
	var buf bytes.Buffer
	_ = c.WriteTOML(&buf) // writing to memory does not fail
	var out []Setting
	counts := map[string]int{}
	table := ""
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case strings.HasPrefix(line, "[["):
			name := strings.TrimSuffix(strings.TrimPrefix(line, "[["), "]]")
			table = fmt.Sprintf("%s[%d]", name, counts[name])
			counts[name]++
		case strings.HasPrefix(line, "["):
			name := strings.TrimSuffix(strings.TrimPrefix(line, "["), "]")
			// A sub-table of an array element ("relay.rate" is not one):
			// keep the element's index.
			table = name
			for arr, n := range counts {
				if strings.HasPrefix(name, arr+".") {
					table = fmt.Sprintf("%s[%d]%s", arr, n-1, strings.TrimPrefix(name, arr))
				}
			}
		default:
			k, v, ok := strings.Cut(line, " = ")
			if !ok {
				continue
			}
			out = append(out, Setting{Key: join(table, k), Value: v})
		}
	}
	return out
}

// NonDefault lists the settings of c that differ from the built-in
// defaults, as "postconf -n" does. An element of [[listener]] is compared
// with DefaultListener(), one of [[route]] with DefaultRoute(); elements
// of other arrays of tables, and a hostname, are always listed when set.
func (c Config) NonDefault() []Setting {
	def := map[string]string{}
	for _, s := range Default().Settings() {
		def[s.Key] = s.Value
	}
	elem := map[string]map[string]string{}
	for name, cfg := range map[string]Config{
		"listener": {Listeners: []Listener{DefaultListener()}},
		"route":    {Routes: []Route{DefaultRoute()}},
	} {
		m := map[string]string{}
		prefix := name + "[0]."
		for _, s := range cfg.Settings() {
			if strings.HasPrefix(s.Key, prefix) {
				m[strings.TrimPrefix(s.Key, prefix)] = s.Value
			}
		}
		elem[name] = m
	}
	var out []Setting
	for _, s := range c.Settings() {
		want, ok := def[s.Key]
		if arr, rest, isElem := arrayElement(s.Key); isElem {
			want, ok = elem[arr][rest]
		}
		if !ok || want != s.Value {
			out = append(out, s)
		}
	}
	return out
}

// arrayElement splits "listener[1].address" into "listener" and
// "address"; ok is false for a key outside an array of tables.
func arrayElement(key string) (arr, rest string, ok bool) {
	i := strings.IndexByte(key, '[')
	j := strings.Index(key, "].")
	if i < 0 || j < i {
		return "", "", false
	}
	return key[:i], key[j+2:], true
}

// Lookup returns the settings of c named by key: one option
// ("queue.spool"), every option of a table ("queue"), or, when key leaves
// out an array element's index ("listener.address"), that option of every
// element. It returns nil when nothing has that name.
func (c Config) Lookup(key string) []Setting {
	var out []Setting
	for _, s := range c.Settings() {
		k := s.Key
		if !strings.Contains(key, "[") {
			k = displayKey(k)
		}
		if k == key || strings.HasPrefix(k, key+".") {
			out = append(out, s)
		}
	}
	return out
}

// KeyLines returns, for a TOML document that Parse accepted, a function
// giving the line (from 1) where a key path ("listener[0].tls_cert") is
// defined, or 0 when the document does not define it.
func KeyLines(data []byte) func(path string) int {
	idx := scanLines(string(data))
	return idx.lineOf
}

// KeyName is a key path as errors show it, without array indexes:
// "listener[1].tls_cert" → "listener.tls_cert".
func KeyName(path string) string { return displayKey(path) }
