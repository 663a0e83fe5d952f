package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Exit statuses of sysexits.h, as sendmail-compatible programs use them.
const (
	exOK          = 0
	exUsage       = 64 // EX_USAGE: wrong arguments
	exDataErr     = 65 // EX_DATAERR: bad input (an address, the message)
	exNoUser      = 67 // EX_NOUSER: a recipient refused
	exUnavailable = 69 // EX_UNAVAILABLE: the message refused for good
	exSoftware    = 70 // EX_SOFTWARE: an internal error
	exIOErr       = 74 // EX_IOERR: reading standard input failed
	exTempFail    = 75 // EX_TEMPFAIL: try again later (relay down, 4xx)
	exProtocol    = 76 // EX_PROTOCOL: the relay answered out of protocol
	exNoPerm      = 77 // EX_NOPERM: relaying refused
	exConfig      = 78 // EX_CONFIG: the configuration is wrong
)

// sendmailArgs are the parsed sendmail command line.
type sendmailArgs struct {
	config     string   // -C: Ferry's configuration file
	sender     string   // -f; "" for the current user
	senderSet  bool     // -f given (it may be "<>")
	fullName   string   // -F: the From: display name when Ferry adds From:
	fromHeader bool     // -t: recipients from To, Cc and Bcc
	dotOK      bool     // -i, -oi: a lone "." does not end the message
	body8      bool     // -B 8BITMIME
	rcpts      []string // the command line's recipients
}

// sendmailUsage is the usage text of "ferry sendmail".
const sendmailUsage = `Usage: ferry sendmail [-t] [-i | -oi] [-f SENDER] [-F NAME] [-C CONFIG] [-B 8BITMIME|7BIT] [RECIPIENT...]

Reads a message on standard input and submits it over SMTP to the local
"ferry serve" (the first plain listener of its configuration), as sendmail does for cron, scripts and PHP's mail(). A symlink
named "sendmail" to the ferry binary behaves the same.

  -t          also send to the addresses in To:, Cc: and Bcc: (Bcc: is removed)
  -i, -oi     a line holding only "." does not end the message (read to EOF)
  -f SENDER   the envelope sender (default: the current user @ hostname; "<>" for none)
  -F NAME     the full name in the From: header Ferry adds when there is none
  -C CONFIG   Ferry's configuration file, for the listener and the hostname
              (default: $FERRY_CONFIG, else /etc/ferry/ferry.toml when it exists)
  -B TYPE     8BITMIME or 7BIT: the body type (default: 8BITMIME when the message has 8-bit octets)
  -odi, -odb, -odq, -oem, -oep, -oeq, -bm
              accepted for compatibility: Ferry always queues the message at
              once and reports every failure in the exit status and on stderr

Exit status (sysexits.h): 0 queued; 64 usage; 65 bad address or message;
67 recipient refused; 69 message refused; 74 input error; 75 temporary
failure (relay down or busy: try again); 76 protocol error; 77 relaying
refused; 78 configuration error. Nothing is queued unless every recipient
was accepted.
`

// runSendmail is "ferry sendmail" and the binary called as "sendmail".
func runSendmail(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a, err := parseSendmailArgs(args)
	if errors.Is(err, errSendmailHelp) {
		fmt.Fprint(stdout, sendmailUsage)
		return exOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		fmt.Fprint(stderr, sendmailUsage)
		return exUsage
	}
	cfg, err := sendmailConfig(a.config)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exConfig
	}
	addr, err := submitAddress(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exConfig
	}
	msg, err := readMessage(stdin, a.dotOK)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: reading the message: %v\n", err)
		return exIOErr
	}
	sub, code, err := prepareSubmission(a, cfg.Hostname, msg, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return code
	}
	id, code, err := submit(addr, cfg.Hostname, sub)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %s: %v\n", addr, err)
		return code
	}
	_ = id // the queue ID is in the relay's log; sendmail prints nothing on success
	return exOK
}

// errSendmailHelp asks for the usage text.
var errSendmailHelp = errors.New("help")

// parseSendmailArgs parses sendmail's traditional options: single letters,
// with their value attached ("-fuser") or in the next argument.
func parseSendmailArgs(args []string) (sendmailArgs, error) {
	var a sendmailArgs
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			a.rcpts = append(a.rcpts, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			a.rcpts = append(a.rcpts, arg)
			continue
		}
		value := func() (string, error) {
			if len(arg) > 2 {
				return arg[2:], nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("option %s needs a value", arg)
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case arg == "-h" || arg == "--help":
			return a, errSendmailHelp
		case arg == "-t":
			a.fromHeader = true
		case arg == "-i" || arg == "-oi":
			a.dotOK = true
		case arg == "-bm", arg == "-odi", arg == "-odb", arg == "-odq", arg == "-oem", arg == "-oep", arg == "-oeq":
			// Compatibility: Ferry queues at once and reports by exit status.
		case arg[1] == 'f':
			if a.sender, err = value(); err != nil {
				return a, err
			}
			if a.sender == "" {
				return a, errors.New("-f needs an address (\"<>\" for the null sender)")
			}
			a.senderSet = true
		case arg[1] == 'F':
			if a.fullName, err = value(); err != nil {
				return a, err
			}
		case arg[1] == 'C':
			if a.config, err = value(); err != nil {
				return a, err
			}
			if a.config == "" {
				return a, errors.New("-C needs a configuration file")
			}
		case arg[1] == 'B':
			v, err := value()
			if err != nil {
				return a, err
			}
			switch strings.ToUpper(v) {
			case "8BITMIME":
				a.body8 = true
			case "7BIT":
			default:
				return a, fmt.Errorf("-B %q: want 8BITMIME or 7BIT", v)
			}
		default:
			return a, fmt.Errorf("unknown option %s", arg)
		}
	}
	return a, nil
}

// sendmailConfig loads the configuration sendmail submits by: path (-C),
// else the one "ferry serve" finds ($FERRY_CONFIG, /etc/ferry/ferry.toml;
// see configFile), else the built-in defaults.
func sendmailConfig(path string) (config.Config, error) {
	file, err := configFile(path)
	if err != nil {
		return config.Config{}, err
	}
	if file == "" {
		return config.Default(), nil
	}
	return config.Load(file)
}

// submitAddress picks the listener sendmail submits to: the first one
// without implicit TLS or required STARTTLS, dialled on loopback when it
// listens on every address.
func submitAddress(cfg config.Config) (string, error) {
	for _, l := range cfg.Listeners {
		if l.ImplicitTLS || l.RequireTLS {
			continue
		}
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil {
			continue
		}
		switch host {
		case "", "0.0.0.0":
			host = "127.0.0.1"
		case "::":
			host = "::1"
		}
		return net.JoinHostPort(host, port), nil
	}
	return "", errors.New("no listener without TLS to submit to in the configuration (sendmail speaks plain SMTP to the local relay)")
}

// readMessage reads the message from r: to EOF, or (unless dotOK) to a
// line holding only ".". Line ends become CRLF.
func readMessage(r io.Reader, dotOK bool) ([]byte, error) {
	br := bufio.NewReader(r)
	var out bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			body := bytes.TrimRight(line, "\r\n")
			if !dotOK && string(body) == "." {
				return out.Bytes(), nil
			}
			out.Write(body)
			out.WriteString("\r\n")
		}
		if errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// submission is one message ready to submit.
type submission struct {
	from   smtp.Path
	rcpts  []smtp.Path
	body8  bool
	header []byte // the header section, with the blank line
	body   []byte
}

// prepareSubmission resolves sender and recipients and completes the
// header: From:, Date: and Message-ID: are added when missing (RFC 5322
// §3.6 requires From and Date; RFC 6409 §8 lets a submission agent add
// them), and Bcc: is removed under -t.
func prepareSubmission(a sendmailArgs, hostname string, msg []byte, now time.Time) (submission, int, error) {
	var s submission
	head, body := splitHeader(msg)
	hdr, err := mail.ReadMessage(bytes.NewReader(append(append([]byte{}, head...), "\r\n"...)))
	if err != nil {
		return s, exDataErr, fmt.Errorf("the message's header: %w", err)
	}
	sender := a.sender
	if !a.senderSet {
		name := "root"
		if u, err := user.Current(); err == nil && u.Username != "" {
			name = u.Username
		}
		sender = name + "@" + hostname
	}
	if sender == "<>" {
		s.from = smtp.Path{}
	} else if s.from, err = smtp.ParseAddress(strings.Trim(sender, "<>")); err != nil {
		return s, exDataErr, fmt.Errorf("sender %q: %w", sender, err)
	}
	rcpts := append([]string{}, a.rcpts...)
	if a.fromHeader {
		for _, f := range []string{"To", "Cc", "Bcc"} {
			if hdr.Header.Get(f) == "" {
				continue
			}
			list, err := hdr.Header.AddressList(f)
			if err != nil {
				return s, exDataErr, fmt.Errorf("%s: header: %w", f, err)
			}
			for _, ad := range list {
				rcpts = append(rcpts, ad.Address)
			}
		}
		head = dropField(head, "Bcc")
	}
	seen := map[string]bool{}
	for _, r := range rcpts {
		for _, one := range strings.Split(r, ",") { // "a@x, b@y" as one argument
			one = strings.Trim(strings.TrimSpace(one), "<>")
			if one == "" {
				continue
			}
			p, err := smtp.ParseAddress(one)
			if err != nil || p.Domain == "" {
				return s, exDataErr, fmt.Errorf("recipient %q: not an address like user@example.com", one)
			}
			if key := strings.ToLower(p.Address()); !seen[key] {
				seen[key] = true
				s.rcpts = append(s.rcpts, p)
			}
		}
	}
	if len(s.rcpts) == 0 {
		return s, exUsage, errors.New("no recipients (give them as arguments, or use -t)")
	}
	var add bytes.Buffer
	if hdr.Header.Get("From") == "" {
		from := (&mail.Address{Name: a.fullName, Address: s.from.Address()}).String()
		if s.from.IsNull() {
			from = "<MAILER-DAEMON@" + hostname + ">"
		}
		fmt.Fprintf(&add, "From: %s\r\n", from)
	}
	if hdr.Header.Get("Date") == "" {
		fmt.Fprintf(&add, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	if hdr.Header.Get("Message-Id") == "" {
		fmt.Fprintf(&add, "Message-ID: <%d.%d@%s>\r\n", now.UnixNano(), os.Getpid(), hostname)
	}
	s.header = append(append(add.Bytes(), head...), "\r\n"...)
	s.body = body
	s.body8 = a.body8 || has8bit(msg)
	return s, exOK, nil
}

// splitHeader splits msg (CRLF line ends) at the first empty line: the
// header fields (each line with its CRLF) and the body. A message that
// starts with something other than a header field is all body.
func splitHeader(msg []byte) (head, body []byte) {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		head, body = msg[:i+2], msg[i+4:]
	} else {
		head, body = msg, nil
	}
	first, _, _ := bytes.Cut(head, []byte("\r\n"))
	if colon := bytes.IndexByte(first, ':'); colon <= 0 || bytes.ContainsAny(first[:colon], " \t") {
		return nil, msg
	}
	return head, body
}

// dropField removes every field named name (with its folded lines) from
// the header section head.
func dropField(head []byte, name string) []byte {
	var out []byte
	skip := false
	for _, line := range bytes.SplitAfter(head, []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			field, _, _ := bytes.Cut(line, []byte(":"))
			skip = strings.EqualFold(strings.TrimSpace(string(field)), name)
		}
		if !skip {
			out = append(out, line...)
		}
	}
	return out
}

// has8bit reports an octet above 127 in b.
func has8bit(b []byte) bool {
	for _, c := range b {
		if c > 127 {
			return true
		}
	}
	return false
}
