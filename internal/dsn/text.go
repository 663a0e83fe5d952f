package dsn

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrymta/ferry/internal/smtp"
)

// textWidth is the width the human-readable part is wrapped to.
const textWidth = 72

// writeText writes the human-readable first part of the report (RFC 6522
// §3): what happened to which recipient, the next hop's reply quoted, and
// what the sender can do.
func writeText(b *bytes.Buffer, r *Report, utf8OK bool, returned returnedPart) {
	p := func(s string) { wrap(b, s, "", textWidth) }
	p("This is the mail system at " + cleanText(r.ReportingMTA, false) + ".")
	b.WriteString("\r\n")
	switch r.Kind {
	case Failed:
		p("Your message could not be delivered to the recipients listed below. " +
			"The mail system has given up on them and will not try again.")
	case Delayed:
		until := latestRetry(r.Rcpts)
		s := "Your message has not been delivered yet to the recipients listed below. " +
			"This is only a warning: you do not need to send it again. " +
			"The mail system will keep trying"
		if !until.IsZero() {
			s += " until " + formatDate(until)
		}
		p(s + ", and will tell you if it finally fails.")
	case Delivered:
		p("Your message was delivered to the recipients listed below.")
	case Relayed:
		p("Your message was passed on to the recipients listed below, through a next mail server " +
			"that cannot send delivery reports. It will probably be delivered, but you will not " +
			"get a further report about these recipients, not even if delivery fails later.")
	}
	for _, rc := range r.Rcpts {
		b.WriteString("\r\n")
		// The address stays on one line, even past the usual width:
		// breaking it (a quoted local part may hold spaces) would
		// make it impossible to copy.
		heading := "<" + cleanText(rc.Addr.Address(), utf8OK) + ">: " + r.Kind.String()
		if len(heading) <= hardLine {
			b.WriteString(heading + "\r\n")
		} else {
			p(heading)
		}
		if s := explain(r.Kind, rc, r.Env.Arrival, r.Date); s != "" {
			wrap(b, s, "    ", textWidth)
		}
		if rc.Reply.Code != 0 {
			who := "Reply:"
			if h := remoteName(rc.RemoteMTA, utf8OK); h != "" {
				who = "Reply (next hop " + h + "):"
			}
			wrap(b, who, "    ", textWidth)
			quoteReply(b, rc.Reply, utf8OK)
		}
	}
	var closing []string
	switch {
	case returned.note != "":
		closing = append(closing, returned.note)
	case returned.kind == returnHeaders:
		closing = append(closing, "The headers of your message are attached.")
	case returned.kind == returnFull:
		closing = append(closing, "Your message is attached.")
	}
	if r.Kind == Failed {
		closing = append(closing, "If you need help, forward this report to your postmaster.")
	}
	for _, c := range closing {
		b.WriteString("\r\n")
		p(c)
	}
}

// quoteReply writes the reply's lines as the next hop sent them, indented and
// wrapped.
func quoteReply(b *bytes.Buffer, r smtp.Reply, utf8OK bool) {
	lines := r.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	code := fmt.Sprintf("%03d", r.Code)
	if r.Code < 0 || r.Code > 999 {
		code = "???"
	}
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		text := code + sep
		if r.Enhanced.Valid() {
			text += string(r.Enhanced) + " "
		}
		wrap(b, text+cleanText(l, utf8OK), "        ", textWidth)
	}
}

// explain returns the plain-English explanation of one recipient's outcome,
// chosen from its enhanced status code (RFC 3463, RFC 5248).
func explain(k Kind, rc Recipient, arrival, now time.Time) string {
	switch k {
	case Delivered:
		return "The receiving server accepted the message for this recipient."
	case Relayed:
		return ""
	}
	if k == Failed && rc.Expired {
		s := "The message could not be delivered for " + age(arrival, now) + ", so the mail system " +
			"has stopped trying."
		if rc.Reply.Code == 0 {
			return s + " No server for this recipient answered during that time."
		}
		s += " The last answer is quoted below."
		if e := codeExplanation(rc.Reply.Enhanced); e != "" && e != expiredMarker {
			s += " " + e
		}
		return s
	}
	if e := codeExplanation(rc.Status(k)); e != "" {
		if e == expiredMarker {
			return "The message could not be delivered for " + age(arrival, now) + "."
		}
		if k == Delayed {
			return "The problem may be temporary. " + e
		}
		return e
	}
	if k == Delayed {
		if rc.Reply.Code == 0 {
			return "No server for this recipient could be reached yet."
		}
		return "The receiving server has not accepted the message yet; it reported a temporary " +
			"problem."
	}
	if rc.Reply.Code == 0 {
		return "The message could not be delivered to this recipient."
	}
	return "The receiving server refused the message permanently."
}

// expiredMarker is what codeExplanation returns for X.4.7, whose text needs
// the message's age.
const expiredMarker = "\x00expired"

// codeExplanation returns the plain-English meaning of an enhanced status
// code (RFC 3463, RFC 5248, RFC 7505, RFC 6531, RFC 8689), whatever its
// class, or "" when there is nothing more specific to say than the reply.
func codeExplanation(code smtp.EnhancedCode) string {
	if !code.Valid() {
		return ""
	}
	switch string(code[2:]) {
	case "1.1":
		return "The receiving server says this address does not exist. Check it for typing " +
			"mistakes, or ask the recipient for the right address."
	case "1.2":
		return "The recipient's domain could not be found or has no mail server. Check the part of " +
			"the address after the @."
	case "1.10":
		return "The recipient's domain publishes a null MX record (RFC 7505): it accepts no mail " +
			"at all. Check the part of the address after the @."
	case "2.2":
		return "The recipient's mailbox is full. Try again later, or reach the recipient another way."
	case "3.4":
		return "The message is larger than the receiving server accepts. Send it again without " +
			"large attachments, or share big files another way."
	case "4.1", "4.2":
		return "The receiving server could not be reached, or the connection to it broke off."
	case "4.6":
		return "The message went round in a loop between mail servers and was stopped. This is a " +
			"configuration problem; please tell your postmaster."
	case "4.7":
		return expiredMarker
	case "6.3":
		return "The receiving server does not accept 8-bit mail and this route is set not to convert " +
			"it. Send the message again as 7-bit text (quoted-printable or base64), or ask your " +
			"postmaster to allow conversion for this route."
	case "6.5":
		return "The message had to be converted to a form the receiving server accepts, and the " +
			"conversion failed, most likely because its MIME structure is damaged. Send it again " +
			"from another mail program or as an attachment."
	case "6.7":
		return "The address has non-ASCII characters and the receiving server does not support " +
			"internationalised email (SMTPUTF8). Use an all-ASCII address for this recipient if " +
			"there is one."
	case "6.9":
		return "The message has non-ASCII characters in its header where they cannot be encoded, and " +
			"the receiving server does not support internationalised email (SMTPUTF8)."
	case "3.1":
		return "The receiving mail system is short of storage space."
	case "7.1":
		return "The receiving server refused the message by its policy. Its answer below may say " +
			"why; the recipient's mail administrators can tell you more."
	case "7.10":
		return "This route requires an encrypted (TLS) connection and the receiving server did not " +
			"offer one. Ask your postmaster, or the recipient's mail administrators, to fix this."
	case "7.30":
		return "You asked for the message to travel only over verified encrypted connections " +
			"(REQUIRETLS), and the receiving server cannot guarantee that."
	}
	return ""
}

// age describes how long ago t0 was at t1, in days when that is a day or
// more and in hours otherwise.
func age(t0, t1 time.Time) string {
	d := t1.Sub(t0)
	if t0.IsZero() || d < 0 {
		return "some time"
	}
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	if d >= 24*time.Hour {
		return plural(int64((d+12*time.Hour)/(24*time.Hour)), "day")
	}
	if d >= time.Hour {
		return plural(int64((d+30*time.Minute)/time.Hour), "hour")
	}
	return plural(max(int64(d/time.Minute), 1), "minute")
}

// latestRetry returns the latest WillRetryUntil of rcpts, or the zero time.
func latestRetry(rcpts []Recipient) time.Time {
	var t time.Time
	for _, r := range rcpts {
		if r.WillRetryUntil.After(t) {
			t = r.WillRetryUntil
		}
	}
	return t
}

// wrap writes s word-wrapped to width columns, each line starting with
// indent. Runs of spaces inside the text are kept (an address may hold
// them); a word longer than the line is written on a line of its own and
// broken at hardLine octets.
func wrap(b *bytes.Buffer, s, indent string, width int) {
	col := 0
	for _, w := range strings.Split(strings.TrimSpace(s), " ") {
		for len(w) > hardLine {
			if col > 0 {
				b.WriteString("\r\n")
			}
			cut := runeCut(w, hardLine)
			b.WriteString(indent)
			b.WriteString(w[:cut])
			b.WriteString("\r\n")
			col = 0
			w = w[cut:]
		}
		switch {
		case col == 0:
			b.WriteString(indent)
			col = len(indent)
		case w != "" && col+1+len(w) > width:
			b.WriteString("\r\n")
			b.WriteString(indent)
			col = len(indent)
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	if col > 0 {
		b.WriteString("\r\n")
	}
}

// runeCut returns the largest index at most n that starts a UTF-8 character
// of s (n itself when s has no character start before it).
func runeCut(s string, n int) int {
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut == 0 {
		return n
	}
	return cut
}
