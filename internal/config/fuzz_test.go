package config

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzLoad checks that the loader never panics on arbitrary bytes, that
// every error it returns names the file, and that an accepted configuration
// survives WriteTOML and Parse unchanged.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(fullConfig))
	f.Add([]byte("[[listener]]\nmax_message_size = \"fifty\"\n"))
	f.Add([]byte("route = [{domain = \"*\", nexthop = \"[127.0.0.1]:2526\"}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if !bytes.HasPrefix([]byte(err.Error()), []byte("fuzz.toml")) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := c.WriteTOML(&buf); err != nil {
			t.Fatalf("WriteTOML: %v", err)
		}
		back, err := Parse("fuzz.toml", buf.Bytes())
		if err != nil {
			t.Fatalf("Parse(WriteTOML()): %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", back, c)
		}
	})
}
