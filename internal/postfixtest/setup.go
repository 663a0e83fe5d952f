package postfixtest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Where Debian keeps the stock master.cf.
const (
	systemMasterCf = "/etc/postfix/master.cf"
	distMasterCf   = "/usr/share/postfix/master.cf.dist"
)

// captureScript is run by pipe(8) as "nobody" for every delivery:
// DIR QUEUE_ID SENDER RECIPIENT... with the message on standard input. It
// writes the message and its envelope under temporary names, then renames
// them, .env first, so a visible .eml always has its envelope.
const captureScript = `#!/bin/sh
dir=$1 id=$2 sender=$3
shift 3
base="$dir/$id.$$"
cat > "$dir/.tmp.$id.$$.eml" || exit 75
{
	printf 'sender %s\n' "$sender"
	for r in "$@"; do printf 'rcpt %s\n' "$r"; done
} > "$dir/.tmp.$id.$$.env" || exit 75
mv "$dir/.tmp.$id.$$.env" "$base.env" || exit 75
mv "$dir/.tmp.$id.$$.eml" "$base.eml" || exit 75
exit 0
`

// setUp writes the instance's directories and configuration.
func (in *Instance) setUp(opts Options, port int) error {
	if err := os.Chmod(in.dir, 0o755); err != nil {
		return fmt.Errorf("chmod instance dir: %w", err)
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("postfix user: %w", err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		return fmt.Errorf("nobody user: %w", err)
	}
	queue := filepath.Join(in.dir, "queue")
	data := filepath.Join(in.dir, "data")
	for _, d := range []struct {
		path  string
		mode  os.FileMode
		owner *user.User // nil: root
	}{
		{in.confDir, 0o755, nil},
		{queue, 0o755, nil},
		{data, 0o700, pf},
		{in.mailDir, 0o755, nobody},
	} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil { // past the umask
			return fmt.Errorf("chmod %s: %w", d.path, err)
		}
		if d.owner != nil {
			uid, _ := strconv.Atoi(d.owner.Uid)
			gid, _ := strconv.Atoi(d.owner.Gid)
			if err := os.Chown(d.path, uid, gid); err != nil {
				return fmt.Errorf("chown %s: %w", d.path, err)
			}
		}
	}
	if err := makeQueue(queue, pf); err != nil {
		return err
	}
	script := filepath.Join(in.dir, "capture.sh")
	if err := os.WriteFile(script, []byte(captureScript), 0o755); err != nil {
		return fmt.Errorf("write capture script: %w", err)
	}
	main := mainCf(in.dir, queue, data, opts)
	if err := writeMainCf(filepath.Join(in.confDir, "main.cf"), main); err != nil {
		return err
	}
	master, err := masterCf(port, script, in.mailDir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(in.confDir, "master.cf"), []byte(master), 0o644); err != nil {
		return fmt.Errorf("write master.cf: %w", err)
	}
	// The postfix command waits (in 300 ms steps, for seconds) while
	// main.cf looks freshly modified; date the files a minute back.
	old := time.Now().Add(-time.Minute)
	for _, f := range []string{"main.cf", "master.cf"} {
		if err := os.Chtimes(filepath.Join(in.confDir, f), old, old); err != nil {
			return fmt.Errorf("date %s: %w", f, err)
		}
	}
	return nil
}

// makeQueue creates the queue subdirectories the way Debian's
// postfix-files lists them, and the "quick-start" flag that lets "postfix
// start" skip its slow integrity checks (seconds on a busy machine); Start
// runs "postfix check" itself when the start fails.
func makeQueue(queue string, pf *user.User) error {
	uid, _ := strconv.Atoi(pf.Uid)
	postdrop, err := user.LookupGroup("postdrop")
	if err != nil {
		return fmt.Errorf("postdrop group: %w", err)
	}
	pdGid, _ := strconv.Atoi(postdrop.Gid)
	for _, d := range []struct {
		name     string
		mode     os.FileMode
		uid, gid int
	}{
		{"active", 0o700, uid, -1}, {"bounce", 0o700, uid, -1}, {"corrupt", 0o700, uid, -1},
		{"defer", 0o700, uid, -1}, {"deferred", 0o700, uid, -1}, {"flush", 0o700, uid, -1},
		{"hold", 0o700, uid, -1}, {"incoming", 0o700, uid, -1}, {"private", 0o700, uid, -1},
		{"saved", 0o700, uid, -1}, {"trace", 0o700, uid, -1},
		{"maildrop", 0o730, uid, pdGid}, {"public", 0o710, uid, pdGid}, {"pid", 0o755, 0, -1},
	} {
		p := filepath.Join(queue, d.name)
		if err := os.Mkdir(p, d.mode); err != nil {
			return fmt.Errorf("create queue dir: %w", err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("chmod queue dir: %w", err)
		}
		if err := os.Chown(p, d.uid, d.gid); err != nil {
			return fmt.Errorf("chown queue dir: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(queue, "quick-start"), nil, 0o644); err != nil {
		return fmt.Errorf("write quick-start: %w", err)
	}
	return nil
}

// mainCf returns main.cf's parameters for the instance.
func mainCf(dir, queue, data string, opts Options) map[string]string {
	host := opts.Hostname
	if host == "" {
		host = "postfix.test"
	}
	p := map[string]string{
		"compatibility_level":         "3.6",
		"queue_directory":             queue,
		"data_directory":              data,
		"maillog_file":                filepath.Join(dir, "maillog"),
		"maillog_file_prefixes":       "/var, /tmp",
		"syslog_name":                 "postfix-ferrytest",
		"myhostname":                  host,
		"mydomain":                    host,
		"myorigin":                    "$myhostname",
		"mydestination":               "",
		"relay_domains":               "",
		"local_recipient_maps":        "",
		"alias_maps":                  "",
		"alias_database":              "",
		"inet_interfaces":             "127.0.0.1",
		"inet_protocols":              "ipv4",
		"mynetworks":                  "127.0.0.0/8",
		"mynetworks_style":            "host",
		"smtpd_relay_restrictions":    "permit_mynetworks, reject_unauth_destination",
		"smtpd_peername_lookup":       "no",
		"smtp_dns_support_level":      "disabled",
		"smtp_host_lookup":            "native",
		"smtpd_tls_security_level":    "none",
		"smtp_tls_security_level":     "none",
		"smtpd_discard_ehlo_keywords": strings.ToLower(strings.Join(opts.DiscardEHLOKeywords, ", ")),
		"multi_instance_enable":       "no",
		// 127.0.0.1 is a remote client: add no Date:, Message-ID: etc.
		"local_header_rewrite_clients": "",
		"biff":                         "no",
		"append_dot_mydomain":          "no",
		"delay_warning_time":           "0",
		// Retry quickly: tests start next hops in any order.
		"queue_run_delay":      "1s",
		"minimal_backoff_time": "1s",
		"maximal_backoff_time": "2s",
		"smtpd_banner":         "$myhostname ESMTP Postfix (ferry interop test)",
	}
	switch opts.Mode {
	case ModeRelay:
		p["default_transport"] = "smtp"
		p["relay_transport"] = "smtp"
		host, port, err := net.SplitHostPort(opts.RelayHost)
		if err != nil {
			host, port = opts.RelayHost, "25"
		}
		p["relayhost"] = "[" + host + "]:" + port
	default:
		p["default_transport"] = "capture"
		p["relay_transport"] = "capture"
		p["local_transport"] = "capture"
	}
	for k, v := range opts.ExtraMain {
		p[k] = v
	}
	return p
}

func writeMainCf(path string, p map[string]string) error {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Private Postfix instance of internal/postfixtest; removed at test end.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, p[k])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write main.cf: %w", err)
	}
	return nil
}

// masterCf returns Debian's master.cf with no chroot, the public smtpd
// replaced by one on 127.0.0.1:PORT, every other inet service dropped, and
// a "capture" pipe service added.
func masterCf(port int, script, mailDir string) (string, error) {
	src, err := os.ReadFile(systemMasterCf)
	if err != nil {
		if src, err = os.ReadFile(distMasterCf); err != nil {
			return "", fmt.Errorf("read a stock master.cf: %w", err)
		}
	}
	var b strings.Builder
	drop := false // dropping a service and its continuation lines
	sc := bufio.NewScanner(strings.NewReader(string(src)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			b.WriteString(line + "\n")
			continue
		}
		if line[0] == ' ' || line[0] == '\t' { // continuation of the service above
			if !drop {
				b.WriteString(line + "\n")
			}
			continue
		}
		f := strings.Fields(line)
		drop = false
		if len(f) < 8 {
			b.WriteString(line + "\n")
			continue
		}
		if f[1] == "inet" {
			drop = true
			continue
		}
		f[4] = "n" // no chroot: the queue has no chroot files
		b.WriteString(strings.Join(f, "\t") + "\n")
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read master.cf: %w", err)
	}
	fmt.Fprintf(&b, "127.0.0.1:%d\tinet\tn\t-\tn\t-\t-\tsmtpd\n", port)
	fmt.Fprintf(&b, "capture\tunix\t-\tn\tn\t-\t-\tpipe\n  null_sender= user=nobody argv=/bin/sh %s %s ${queue_id} ${sender} ${recipient}\n", script, mailDir)
	return b.String(), nil
}
