package dsn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Build returns the report r as a complete message (CRLF line ends): an RFC
// 6522 multipart/report of report-type delivery-status with a text/plain
// explanation, the RFC 3464 delivery-status part and, when original is not
// nil, the original message or its header (see Report.MaxReturnSize and RET).
// For an envelope with SMTPUTF8 the report uses the RFC 6533 types
// message/global-delivery-status, message/global and message/global-headers
// and may hold UTF-8; otherwise it is 7-bit clean. original is read at most
// to max(MaxReturnSize, 64 KiB)+1 octets.
func Build(r Report, original io.Reader) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	global := r.Env.SMTPUTF8
	to := r.To
	if to.IsNull() {
		to = r.Env.From
	}
	if !global && !to.IsASCII() {
		return nil, fmt.Errorf("dsn: report recipient %q is not ASCII and the message did not use SMTPUTF8", to.Address())
	}
	ret, err := readReturned(&r, original, global)
	if err != nil {
		return nil, err
	}

	var text, status bytes.Buffer
	writeText(&text, &r, global, ret)
	writeStatus(&status, &r, global)
	eightBit := ret.eightBit || hasEightBit(text.Bytes()) || hasEightBit(status.Bytes())

	statusType, charset := "message/delivery-status", "us-ascii"
	if global {
		statusType, charset = "message/global-delivery-status", "utf-8"
	}
	boundary := makeBoundary(r.MessageID, text.Bytes(), status.Bytes(), ret.data)
	cte := "7bit"
	if eightBit {
		cte = "8bit"
	}

	var b bytes.Buffer
	b.Grow(text.Len() + status.Len() + len(ret.data) + 1024)
	writeField(&b, "From", "Mail Delivery System <MAILER-DAEMON@"+cleanText(r.ReportingMTA, false)+">")
	writeField(&b, "To", "<"+cleanText(to.Address(), global)+">")
	writeField(&b, "Subject", r.Kind.subject())
	writeField(&b, "Date", formatDate(r.Date))
	writeField(&b, "Message-ID", "<"+r.MessageID+">")
	if ret.messageID != "" {
		writeField(&b, "In-Reply-To", ret.messageID)
		writeField(&b, "References", ret.messageID)
	}
	// RFC 3834 §5: a report is an automatic response.
	writeField(&b, "Auto-Submitted", "auto-replied")
	writeField(&b, "MIME-Version", "1.0")
	writeField(&b, "Content-Type", `multipart/report; report-type=delivery-status; boundary="`+boundary+`"`)
	writeField(&b, "Content-Transfer-Encoding", cte)
	b.WriteString("\r\nThis is a MIME-formatted delivery status notification.\r\n")

	// Part 1: the human-readable explanation (RFC 6522 §3).
	b.WriteString("\r\n--" + boundary + "\r\n")
	writeField(&b, "Content-Type", "text/plain; charset="+charset)
	writeField(&b, "Content-Description", "Notification")
	writeField(&b, "Content-Transfer-Encoding", partCTE(hasEightBit(text.Bytes())))
	b.WriteString("\r\n")
	b.Write(text.Bytes())

	// Part 2: the machine-readable status (RFC 3464 §2, RFC 6533 §6.2).
	b.WriteString("\r\n--" + boundary + "\r\n")
	writeField(&b, "Content-Type", statusType)
	writeField(&b, "Content-Description", "Delivery report")
	writeField(&b, "Content-Transfer-Encoding", partCTE(hasEightBit(status.Bytes())))
	b.WriteString("\r\n")
	b.Write(status.Bytes())

	// Part 3: the returned message or its header (RFC 6522 §3).
	if ret.kind != returnNone {
		b.WriteString("\r\n--" + boundary + "\r\n")
		writeField(&b, "Content-Type", ret.contentType(global))
		writeField(&b, "Content-Description", returnedDescription(r.Kind, ret.kind))
		writeField(&b, "Content-Transfer-Encoding", partCTE(ret.eightBit))
		b.WriteString("\r\n")
		b.Write(ret.data)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// check validates the parts of r that Build relies on.
func (r *Report) check() error {
	switch {
	case !r.Kind.valid():
		return fmt.Errorf("dsn: invalid report kind %d", r.Kind)
	case r.Env == nil:
		return errors.New("dsn: report has no envelope")
	case len(r.Rcpts) == 0:
		return errors.New("dsn: report has no recipients")
	case r.To.IsNull() && r.Env.From.IsNull():
		return errors.New("dsn: no report for a message with the null reverse path")
	case !isHostName(r.ReportingMTA):
		return fmt.Errorf("dsn: reporting MTA name %q is not a host name", r.ReportingMTA)
	case !isMessageID(r.MessageID):
		return fmt.Errorf("dsn: report Message-ID %q is not left@right", r.MessageID)
	}
	return nil
}

// writeStatus writes the delivery-status part: the per-message fields, then
// one block of per-recipient fields for each recipient (RFC 3464 §2.2, §2.3).
func writeStatus(b *bytes.Buffer, r *Report, global bool) {
	writeField(b, "Reporting-MTA", "dns; "+cleanText(r.ReportingMTA, false))
	if r.Env.ID != "" {
		writeField(b, "X-Ferry-Queue-ID", cleanText(r.Env.ID, false))
	}
	if r.Env.EnvID != "" {
		writeField(b, "Original-Envelope-Id", envIDField(r.Env.EnvID))
	}
	if !r.Env.Arrival.IsZero() {
		writeField(b, "Arrival-Date", formatDate(r.Env.Arrival))
	}
	for _, rc := range r.Rcpts {
		b.WriteString("\r\n")
		if rc.Index >= 0 && rc.Index < len(r.Env.Rcpts) {
			if v := origRcptField(r.Env.Rcpts[rc.Index].ORcpt, global); v != "" {
				writeField(b, "Original-Recipient", v)
			}
		}
		writeField(b, "Final-Recipient", addrField(rc.Addr, global))
		writeField(b, "Action", r.Kind.String())
		writeField(b, "Status", string(rc.Status(r.Kind)))
		if h := remoteName(rc.RemoteMTA, global); h != "" {
			writeField(b, "Remote-MTA", "dns; "+h)
		}
		if rc.Reply.Code != 0 {
			writeField(b, "Diagnostic-Code", "smtp; "+replyText(rc.Reply, global))
		}
		if !rc.LastAttempt.IsZero() {
			writeField(b, "Last-Attempt-Date", formatDate(rc.LastAttempt))
		}
		if r.Kind == Delayed && !rc.WillRetryUntil.IsZero() {
			writeField(b, "Will-Retry-Until", formatDate(rc.WillRetryUntil))
		}
	}
}

// partCTE returns the Content-Transfer-Encoding of a part.
func partCTE(eightBit bool) string {
	if eightBit {
		return "8bit"
	}
	return "7bit"
}

// returnedDescription returns the Content-Description of the third part.
func returnedDescription(k Kind, rk returnKind) string {
	what := map[Kind]string{Failed: "Undelivered", Delayed: "Delayed", Delivered: "Delivered", Relayed: "Relayed"}[k]
	if rk == returnHeaders {
		return what + " message headers"
	}
	return what + " message"
}

// makeBoundary derives the MIME boundary from the report's content, so that
// it is fixed for given input (golden tests) and cannot occur in the parts
// (RFC 2046 §5.1.1) short of a SHA-256 collision. It is checked anyway.
func makeBoundary(id string, parts ...[]byte) string {
	for n := 0; ; n++ {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%d", id, n)
		for _, p := range parts {
			h.Write(p)
		}
		boundary := "=_ferry_" + hex.EncodeToString(h.Sum(nil)[:12])
		clash := false
		for _, p := range parts {
			clash = clash || bytes.Contains(p, []byte("--"+boundary))
		}
		if !clash || n >= 8 {
			return boundary
		}
	}
}

// isHostName reports whether s can stand as a host name in Reporting-MTA
// and in the From address: letters, digits, '-', '.' and an address literal's
// "[", "]" and ":".
func isHostName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.[]:_", c) >= 0) {
			return false
		}
	}
	return true
}

// isMessageID reports whether s is a dot-atom "left@right" usable inside
// Message-ID's angle brackets (RFC 5322 §3.6.4).
func isMessageID(s string) bool {
	left, right, ok := strings.Cut(s, "@")
	if !ok || left == "" || right == "" || len(s) > 250 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 127 || strings.IndexByte(`()<>[]:;,\"`, c) >= 0 {
			if c != '@' {
				return false
			}
		}
	}
	return strings.Count(s, "@") == 1
}

// remoteName returns the next hop's name as the report shows it, or "".
func remoteName(mta string, utf8OK bool) string {
	return strings.Join(strings.Fields(cleanText(remoteHost(mta), utf8OK)), "")
}
