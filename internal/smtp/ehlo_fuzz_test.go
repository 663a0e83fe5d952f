package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// formatParams gives the parameters an extension has after being sent by
// Reply.Format and read back: control characters become spaces and the
// ends are trimmed as ParseEHLOReply trims them.
func formatParams(p string) string {
	b := []byte(p)
	for i, c := range b {
		if c < 32 || c == 127 {
			b[i] = ' '
		}
	}
	return strings.Trim(string(b), " \t")
}

// FuzzParseEHLOReply reads arbitrary octets as a server's EHLO reply
// (ReadReply, then ParseEHLOReply) and checks that the keyword set is well
// formed and survives being sent again with NewEHLOReply.
func FuzzParseEHLOReply(f *testing.F) {
	for _, s := range []string{
		"250-mx.example Hello\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 HELP\r\n",
		"250-domino.example ESMTP\r\n250-SIZE\r\n250-PIPELINING\r\n250 HELP\r\n",
		"250-x\r\n250-AUTH=LOGIN PLAIN\r\n250 AUTH LOGIN\r\n",
		"250-x\r\n250-auth=login\r\n250 size 99999999999999999999\r\n",
		"250-x\r\n250-SIZE -1\r\n250-size 7\r\n250 X-FOO\ta\tb\r\n",
		"250-2.0.0 x\r\n250-2.0.0 DSN\r\n250 2.0.0 ENHANCEDSTATUSCODES\r\n",
		"250 only.the.host\r\n",
		"502 5.5.1 EHLO not implemented\r\n",
		"250-x\n250--BAD\n250 GOOD-\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadReply(bufio.NewReaderSize(bytes.NewReader(in), 16))
		if err != nil {
			return
		}
		ext := ParseEHLOReply(r)
		if r.Code != CodeOK && len(ext) != 0 {
			t.Fatalf("reply %d has extensions %v", r.Code, ext)
		}
		if n := ext.Size(); n < 0 {
			t.Fatalf("negative SIZE %d from %q", n, ext["SIZE"])
		}
		kws := ext.Keywords()
		lines := make([]string, 0, len(kws))
		for _, k := range kws {
			if !validKeyword(k) || k != strings.ToUpper(k) {
				t.Fatalf("keyword %q from %q", k, in)
			}
			if !ext.Has(strings.ToLower(k)) || ext.Param(strings.ToLower(k)) != ext[k] {
				t.Fatalf("Has/Param of %q disagree with the map", k)
			}
			if p := ext[k]; p != "" {
				lines = append(lines, k+" "+p)
			} else {
				lines = append(lines, k)
			}
		}
		for _, m := range ext.AuthMechanisms() {
			if m == "" || m != strings.ToUpper(m) || strings.ContainsAny(m, " \t") {
				t.Fatalf("AUTH mechanism %q", m)
			}
		}
		if r.Code != CodeOK {
			return
		}
		// What we read, sent again, reads back as the same keyword set.
		wire := NewEHLOReply("relay.example", "", lines).Format(false)
		r2, err := ReadReply(bufio.NewReader(bytes.NewReader(wire)))
		if err != nil {
			t.Fatalf("%q does not parse: %v", wire, err)
		}
		ext2 := ParseEHLOReply(r2)
		if len(ext2) != len(ext) {
			t.Fatalf("%v sent as %q reads back as %v", ext, wire, ext2)
		}
		for k, p := range ext {
			if p2, ok := ext2[k]; !ok || p2 != formatParams(p) {
				t.Fatalf("%s %q sent as %q reads back as %q (%v)", k, p, wire, p2, ok)
			}
		}
	})
}
