package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestCommandsNeverIgnoreArguments runs the built binary with arguments it
// must take or refuse: never ignore. A positional argument nobody expects,
// an empty flag value and a wrong flag are errors whose first line says
// what was wrong; flags after positional arguments work.
func TestCommandsNeverIgnoreArguments(t *testing.T) {
	t.Parallel()
	b := ferry()
	dir := t.TempDir()
	conf := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(conf, []byte("hostname = \"relay.test\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join("testdata", "simple-utf8-french.eml")
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		first string // the first line of stderr
	}{
		{"serve FILE", []string{"serve", conf}, 2, `ferry serve: unexpected argument "` + conf + `": give the configuration file as --config ` + conf},
		{"serve --spool empty", []string{"serve", "--spool", ""}, 2, "ferry serve: --spool: empty value (give a value, or leave the flag out for the default)"},
		{"serve --spool= empty", []string{"serve", "--spool="}, 2, "ferry serve: --spool: empty value (give a value, or leave the flag out for the default)"},
		{"serve --admin empty", []string{"serve", "--admin", ""}, 2, "ferry serve: --admin: empty value (give a value, or leave the flag out for the default)"},
		{"serve --route empty", []string{"serve", "--route", ""}, 2, `ferry serve: --route: empty value (give a value, or leave the flag out for the default)`},
		{"serve unknown flag", []string{"serve", "--spoool", "/x"}, 2, "flag provided but not defined: -spoool"},
		{"sink extra argument", []string{"sink", "--listen", "127.0.0.1:0", "extra"}, 2, `ferry sink: unexpected argument "extra"`},
		{"probe without host", []string{"probe", "--json"}, 2, "ferry probe: missing argument: want HOST[:PORT] or DOMAIN"},
		{"probe two hosts", []string{"probe", "a.test", "b.test"}, 2, `ferry probe: unexpected argument "b.test"`},
		{"check-config two files", []string{"check-config", conf, conf}, 2, `ferry check-config: unexpected argument "` + conf + `"`},
		{"queue empty --spool", []string{"queue", "--spool", "", "list"}, 2, "ferry queue: --spool: empty value (give a value, or leave the flag out for the default)"},
		{"queue list extra", []string{"queue", "--spool", dir, "list", "extra"}, 2, `ferry queue list: unexpected argument "extra"`},
		{"queue no command", []string{"queue"}, 2, "ferry queue: missing command: want one of list, show, hold, release, retry, delete, bounce"},
		{"version extra", []string{"version", "x"}, 2, `ferry version: unexpected argument "x"`},
		{"convert two files", []string{"convert", msg, msg}, 2, `ferry convert: unexpected argument "` + msg + `"`},
		{"log without ID", []string{"log"}, 2, "ferry log: missing argument: want ID"},
		{"no subcommand", nil, 2, "ferry: missing subcommand"},
		{"help for nothing", []string{"help", "frobnicate"}, 2, `ferry help: unknown subcommand "frobnicate"`},
		{"unknown subcommand", []string{"frobnicate"}, 2, `ferry: unknown subcommand "frobnicate" (see "ferry help")`},
	} {
		_, errOut, code := b.Run(t, tc.args...)
		if code != tc.code || firstLine(errOut) != tc.first {
			t.Errorf("%s: ferry %q: exit %d, first line %q; want %d, %q", tc.name, tc.args, code, firstLine(errOut), tc.code, tc.first)
		}
	}

	// Flags after positional arguments.
	if out, errOut, code := b.Run(t, "check-config", conf, "-q"); code != 0 || out != "" {
		t.Errorf("check-config F -q: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := b.Run(t, "convert", msg, "--report"); code != 0 || !strings.Contains(errOut, "{") || !strings.Contains(out, "Content-Transfer-Encoding") {
		t.Errorf("convert F --report: %d %q %q", code, out, errOut)
	}
	h := startSink(t, "127.0.0.1:0", "--keywords", "SIZE,PIPELINING")
	if out, errOut, code := b.Run(t, "probe", h.Addr, "--json", "--no-tls"); code != 0 || !strings.HasPrefix(out, "{") || !strings.Contains(out, `"PIPELINING"`) {
		t.Errorf("probe HOST --json: %d %q %q", code, out, errOut)
	}
	// "--" ends the flags: "-q" is then a file name.
	if _, errOut, code := b.Run(t, "check-config", "--", "-q"); code != 1 || !strings.Contains(errOut, "-q") {
		t.Errorf("check-config -- -q: %d %q", code, errOut)
	}
}

// TestAdminOff checks the one spelling that disables the admin API, on the
// command line and in the file alike: no socket, no address file.
func TestAdminOff(t *testing.T) {
	t.Parallel()
	for name, r := range map[string]*relay{
		"--admin off":     startRelayFlags(t, "", "", "--admin", "off"),
		`address = "off"`: startRelay(t, "[admin]\naddress = \"off\"\n", ""),
	} {
		if strings.Contains(r.Stdout.String(), "admin API on") {
			t.Errorf("%s: %s", name, r.Stdout.String())
		}
		for _, f := range []string{"admin.sock", "admin.addr"} {
			if _, err := os.Stat(filepath.Join(r.spool, f)); !os.IsNotExist(err) {
				t.Errorf("%s: %s exists (%v)", name, f, err)
			}
		}
	}
}

// TestHelpAndVersion checks "ferry --version" and that -h of every
// subcommand prints its flags and exits 0.
func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	b := ferry()
	out, errOut, code := b.Run(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "ferry ") {
		t.Errorf("ferry --version: %d %q %q", code, out, errOut)
	}
	for _, tc := range []struct {
		args []string
		flag string // one flag the help names
	}{
		{[]string{"serve"}, "-spool"},
		{[]string{"sink"}, "-keywords"},
		{[]string{"probe"}, "-json"},
		{[]string{"explain"}, "-to"},
		{[]string{"convert"}, "-report"},
		{[]string{"check-config"}, "-q"},
		{[]string{"passwd"}, "-"},
		{[]string{"queue"}, "-spool"},
		{[]string{"queue", "list"}, "-hop"},
		{[]string{"queue", "show"}, "-body"},
		{[]string{"queue", "delete"}, "-all"},
		{[]string{"queue", "retry"}, "-hop"},
		{[]string{"log"}, "-file"},
		{[]string{"bench"}, "-sink-listen"},
		{[]string{"version"}, "Usage"},
	} {
		out, errOut, code := b.Run(t, append(tc.args, "-h")...)
		if code != 0 || !strings.Contains(out+errOut, tc.flag) {
			t.Errorf("ferry %s -h: exit %d, output lacks %q:\n%s%s", strings.Join(tc.args, " "), code, tc.flag, out, errOut)
		}
	}
}
