package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"MAIL FROM:<user@example.com> SIZE=100 BODY=8BITMIME",
		"RCPT TO:<Postmaster>",
		`MAIL FROM:<"a> SIZE=1"@x>`,
		"RCPT TO:<@a,@b:user@[IPv6:2001:db8::1]> NOTIFY=SUCCESS ORCPT=rfc822;a+2Bb@c",
		"MAIL FROM:<>",
		"EHLO client.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := ParseCommand(line)
		arg := line
		if err == nil {
			arg = cmd.Arg
		}
		for _, mail := range []bool{true, false} {
			parse, prefix := ParseRcptArg, "TO:"
			if mail {
				parse, prefix = ParseMailArg, "FROM:"
			}
			p, ps, err := parse(arg)
			if err != nil {
				continue
			}
			s := p.String()
			p2, ps2, err := parse(prefix + s)
			if err != nil {
				t.Fatalf("%q: path %#v formats as %q, which does not parse: %v", arg, p, s, err)
			}
			if p2 != p || len(ps2) != 0 {
				t.Fatalf("%q: path %#v formats as %q, which parses as %#v %v", arg, p, s, p2, ps2)
			}
			ps3, err := ParseParams(ps.String())
			if err != nil || !reflect.DeepEqual(ps3, ps) {
				t.Fatalf("%q: params %v format as %q, which parse as %v, %v", arg, ps, ps.String(), ps3, err)
			}
		}
	})
}

// checkCanonical fails the test if out holds a bare CR or bare LF.
func checkCanonical(t *testing.T, out []byte) {
	t.Helper()
	for i, c := range out {
		if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') || c == '\n' && (i == 0 || out[i-1] != '\r') {
			t.Fatalf("bare newline at %d in output %q", i, out)
		}
	}
}

func FuzzDataReader(f *testing.F) {
	for _, tc := range smuggling {
		f.Add([]byte("a" + tc.sep + "b\r\n.\r\nNEXT"))
	}
	f.Add([]byte(".\r\n"))
	f.Add([]byte("..x\r\n.\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		read := func(opts DataOptions) ([]byte, error, []byte) {
			br := bufio.NewReaderSize(bytes.NewReader(in), 16)
			out, err := io.ReadAll(NewDataReader(br, opts))
			rest, _ := io.ReadAll(br)
			return out, err, rest
		}
		out, err, rest := read(DataOptions{})
		checkCanonical(t, out)
		if err == nil {
			end := in[:len(in)-len(rest)]
			if !bytes.HasSuffix(end, []byte("\r\n.\r\n")) && !bytes.Equal(end, []byte(".\r\n")) {
				t.Fatalf("data ended at %q without <CRLF>.<CRLF>", end)
			}
			// Reading is idempotent: write the output back and read it.
			var wire bytes.Buffer
			w := NewDataWriter(&wire)
			w.Write(out)
			w.Close()
			again, err2, _ := readData(t, &wire, 4096, DataOptions{Bare: BareReject})
			if err2 != nil || again != string(out) {
				t.Fatalf("re-read of %q gives %q, %v", out, again, err2)
			}
		}
		// Every policy and limit consumes exactly the same input.
		for _, opts := range []DataOptions{{Bare: BareReject}, {MaxSize: 7}} {
			out2, err2, rest2 := read(opts)
			checkCanonical(t, out2)
			if !bytes.Equal(rest2, rest) {
				t.Fatalf("%+v: rest %q, want %q", opts, rest2, rest)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) != errors.Is(err2, io.ErrUnexpectedEOF) {
				t.Fatalf("%+v: error %v, but %v without options", opts, err2, err)
			}
			if opts.MaxSize > 0 && len(out2) > int(opts.MaxSize) {
				t.Fatalf("returned %d octets over a limit of %d", len(out2), opts.MaxSize)
			}
		}
		// Writer then reader gives the canonical form of any input.
		var wire bytes.Buffer
		w := NewDataWriter(&wire)
		w.Write(in)
		w.Close()
		checkCanonical(t, wire.Bytes())
		back, err3, rest3 := readData(t, &wire, 64, DataOptions{Bare: BareReject})
		if err3 != nil || back != canonical(string(in)) || rest3 != "" {
			t.Fatalf("round trip of %q: %q, %v, rest %q", in, back, err3, rest3)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 Ok\r\n",
		"250-mx.example\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
		"550 5.1.1 User unknown\r\n",
		"452-4.5.3 a\r\n452 4.5.3 b\r\n",
		"250\n",
		"250-a\r\n251 b\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadReply(bufio.NewReaderSize(bytes.NewReader(in), 16))
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 599 || len(r.Lines) == 0 {
			t.Fatalf("accepted %#v", r)
		}
		if r.Enhanced != "" && r.Enhanced.Class() != r.Class() {
			t.Fatalf("enhanced code %q in a %d reply", r.Enhanced, r.Code)
		}
		f1 := r.Format(true)
		r2, err := ReadReply(bufio.NewReader(bytes.NewReader(f1)))
		if err != nil {
			t.Fatalf("%#v formats as %q, which does not parse: %v", r, f1, err)
		}
		if f2 := r2.Format(true); !bytes.Equal(f1, f2) || r2.Code != r.Code || len(r2.Lines) != len(r.Lines) {
			t.Fatalf("%q re-formats as %q", f1, f2)
		}
		ParseEHLOReply(r).Size()
	})
}
