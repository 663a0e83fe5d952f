package dsn

import (
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferrymta/ferry/internal/smtp"
)

// checkReport parses msg independently and checks it against the report it
// was built from: the RFC 5322 and RFC 3834 headers, the three parts and
// their types (RFC 6522, RFC 6533), every required RFC 3464 field per message
// and per recipient, and what was returned of the original.
func checkReport(t *testing.T, msg []byte, r Report, original string) {
	t.Helper()
	errs := reportProblems(msg, r, original)
	for _, e := range errs {
		t.Error(e)
	}
	if len(errs) > 0 {
		t.Logf("report:\n%s", msg)
	}
}

// reportProblems lists everything wrong with msg; empty means none.
func reportProblems(msg []byte, r Report, original string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	global := r.Env.SMTPUTF8

	// Wire form: CRLF only, lines ≤ 998, 7-bit unless internationalised.
	for i, line := range bytes.Split(msg, []byte("\r\n")) {
		if len(line) > 998 {
			fail("line %d is %d octets long", i+1, len(line))
		}
		if bytes.ContainsAny(line, "\r\n\x00") {
			fail("line %d holds a bare CR, LF or NUL", i+1)
		}
		if !global && hasEightBit(line) {
			fail("line %d of a non-SMTPUTF8 report is not 7-bit: %q", i+1, line)
		}
	}
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		fail("report does not end in CRLF")
	}

	p, err := parseReport(msg)
	if err != nil {
		return append(errs, "report does not parse: "+err.Error())
	}
	h := p.header
	if a, err := mail.ParseAddress(h.Get("From")); err != nil || a.Address != "MAILER-DAEMON@"+r.ReportingMTA || a.Name != "Mail Delivery System" {
		fail("From = %q (%v)", h.Get("From"), err)
	}
	wantTo := r.To
	if wantTo.IsNull() {
		wantTo = r.Env.From
	}
	if a, err := mail.ParseAddress(h.Get("To")); err != nil || !sameAddress(a.Address, wantTo.Address()) {
		fail("To = %q, want %s (%v)", h.Get("To"), wantTo.Address(), err)
	}
	if got := h.Get("Subject"); got != r.Kind.subject() {
		fail("Subject = %q, want %q", got, r.Kind.subject())
	}
	if d, err := mail.ParseDate(h.Get("Date")); err != nil || !d.Equal(r.Date.Truncate(time.Second)) {
		fail("Date = %q (%v)", h.Get("Date"), err)
	}
	if got := h.Get("Message-Id"); got != "<"+r.MessageID+">" {
		fail("Message-ID = %q", got)
	}
	if h.Get("Mime-Version") != "1.0" {
		fail("MIME-Version = %q", h.Get("Mime-Version"))
	}
	if h.Get("Auto-Submitted") != "auto-replied" {
		fail("Auto-Submitted = %q", h.Get("Auto-Submitted"))
	}
	if p.mediaType != "multipart/report" || p.params["report-type"] != "delivery-status" || p.params["boundary"] == "" {
		fail("Content-Type = %q", h.Get("Content-Type"))
	}

	wantParts := 3
	if original == "" {
		wantParts = 2
	}
	if len(p.parts) == 2 && wantParts == 3 {
		// Allowed only when the sender is told why.
		if t := string(p.parts[0].body); !strings.Contains(t, "could not be attached") && !strings.Contains(t, "had no header") {
			fail("the original is missing and the text does not say why")
		}
		wantParts = 2
	}
	if len(p.parts) != wantParts {
		return append(errs, fmt.Sprintf("%d parts, want %d", len(p.parts), wantParts))
	}

	// Part 1: text/plain naming every recipient.
	text := p.parts[0]
	wantCharset := "us-ascii"
	if global {
		wantCharset = "utf-8"
	}
	if text.mediaType != "text/plain" || !strings.EqualFold(text.params["charset"], wantCharset) {
		fail("part 1 is %s charset=%s", text.mediaType, text.params["charset"])
	}
	for _, rc := range r.Rcpts {
		want := "<" + cleanText(rc.Addr.Address(), global) + ">"
		if !bytes.Contains(text.body, []byte(want)) {
			fail("text part does not name %s", want)
		}
	}

	// Part 2: the delivery status.
	errs = append(errs, statusProblems(p.parts[1], r)...)

	// Part 3: the returned message or its header.
	if wantParts == 3 {
		// A message the report cannot carry (one that neither fits
		// nor converts) is returned as headers, and the text says so.
		downgraded := strings.Contains(string(p.parts[0].body), "could not be attached in a form")
		errs = append(errs, returnedProblems(p.parts[2], r, original, downgraded)...)
	}
	return errs
}

// statusProblems checks the delivery-status part against r (RFC 3464 §2.2,
// §2.3; RFC 6533 §6.2 for the global type).
func statusProblems(part parsedPart, r Report) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	global := r.Env.SMTPUTF8
	wantType := "message/delivery-status"
	if global {
		wantType = "message/global-delivery-status"
	}
	if part.mediaType != wantType {
		fail("part 2 is %s, want %s", part.mediaType, wantType)
	}
	msgFields, rcpts, err := parseStatus(part.body)
	if err != nil {
		return append(errs, "delivery-status does not parse: "+err.Error())
	}
	if got := msgFields.Get("Reporting-Mta"); got != "dns; "+r.ReportingMTA {
		fail("Reporting-MTA = %q", got)
	}
	if r.Env.EnvID != "" && msgFields.Get("Original-Envelope-Id") == "" {
		fail("Original-Envelope-Id missing for ENVID %q", r.Env.EnvID)
	}
	if r.Env.EnvID == "" && msgFields.Get("Original-Envelope-Id") != "" {
		fail("Original-Envelope-Id present without ENVID")
	}
	if !r.Env.Arrival.IsZero() {
		if d, err := mail.ParseDate(msgFields.Get("Arrival-Date")); err != nil || !d.Equal(r.Env.Arrival.Truncate(time.Second)) {
			fail("Arrival-Date = %q (%v)", msgFields.Get("Arrival-Date"), err)
		}
	}
	if len(rcpts) != len(r.Rcpts) {
		return append(errs, fmt.Sprintf("%d recipient blocks, want %d", len(rcpts), len(r.Rcpts)))
	}
	for i, rc := range r.Rcpts {
		f := rcpts[i]
		typ, addr, ok := strings.Cut(f.Get("Final-Recipient"), ";")
		addr = strings.TrimSpace(addr)
		switch {
		case !ok:
			fail("rcpt %d: Final-Recipient %q has no address type", i, f.Get("Final-Recipient"))
		case rc.Addr.IsASCII() && (typ != "rfc822" || addr != rc.Addr.Address()):
			fail("rcpt %d: Final-Recipient = %q, want rfc822; %s", i, f.Get("Final-Recipient"), rc.Addr.Address())
		case !rc.Addr.IsASCII() && typ != "utf-8":
			fail("rcpt %d: Final-Recipient = %q, want type utf-8", i, f.Get("Final-Recipient"))
		case !rc.Addr.IsASCII() && global && printableUTF8(rc.Addr.Address()) && addr != rc.Addr.Address():
			fail("rcpt %d: Final-Recipient = %q, want the UTF-8 address", i, f.Get("Final-Recipient"))
		}
		if got := f.Get("Action"); got != r.Kind.String() {
			fail("rcpt %d: Action = %q, want %q", i, got, r.Kind)
		}
		st := smtp.EnhancedCode(f.Get("Status"))
		wantClass := map[Kind][]int{Failed: {4, 5}, Delayed: {4}, Delivered: {2}, Relayed: {2}}[r.Kind]
		if !st.Valid() || (st.Class() != wantClass[0] && st.Class() != wantClass[len(wantClass)-1]) {
			fail("rcpt %d: Status = %q, want class %v", i, st, wantClass)
		}
		if rc.Reply.Enhanced.Valid() && !rc.Expired && rc.Reply.Enhanced.Class() == st.Class() && st != rc.Reply.Enhanced {
			fail("rcpt %d: Status = %q, the reply gave %q", i, st, rc.Reply.Enhanced)
		}
		orcpt := ""
		if rc.Index >= 0 && rc.Index < len(r.Env.Rcpts) {
			orcpt = r.Env.Rcpts[rc.Index].ORcpt
		}
		// An ORCPT that is not addr-type;address (RFC 3461 §4.2) is
		// left out; smtpd refuses such a parameter anyway.
		typ, oaddr, ok := strings.Cut(orcpt, ";")
		validORcpt := ok && strings.TrimSpace(oaddr) != "" && regexp.MustCompile(`^\s*[A-Za-z0-9.-]{1,64}\s*$`).MatchString(typ)
		if validORcpt != (f.Get("Original-Recipient") != "") {
			fail("rcpt %d: ORCPT %q but Original-Recipient %q", i, orcpt, f.Get("Original-Recipient"))
		}
		if (remoteName(rc.RemoteMTA, global) != "") != strings.HasPrefix(f.Get("Remote-Mta"), "dns; ") {
			fail("rcpt %d: RemoteMTA %q but Remote-MTA %q", i, rc.RemoteMTA, f.Get("Remote-Mta"))
		}
		if diag := f.Get("Diagnostic-Code"); rc.Reply.Code != 0 {
			if !strings.HasPrefix(diag, fmt.Sprintf("smtp; %d", rc.Reply.Code)) {
				fail("rcpt %d: Diagnostic-Code = %q, want smtp; %d ...", i, diag, rc.Reply.Code)
			}
		} else if diag != "" {
			fail("rcpt %d: Diagnostic-Code %q without a reply", i, diag)
		}
		if !rc.LastAttempt.IsZero() {
			if _, err := mail.ParseDate(f.Get("Last-Attempt-Date")); err != nil {
				fail("rcpt %d: Last-Attempt-Date = %q: %v", i, f.Get("Last-Attempt-Date"), err)
			}
		}
		if r.Kind == Delayed && !rc.WillRetryUntil.IsZero() {
			if d, err := mail.ParseDate(f.Get("Will-Retry-Until")); err != nil || !d.Equal(rc.WillRetryUntil.Truncate(time.Second)) {
				fail("rcpt %d: Will-Retry-Until = %q (%v)", i, f.Get("Will-Retry-Until"), err)
			}
		}
		if r.Kind != Delayed && f.Get("Will-Retry-Until") != "" {
			fail("rcpt %d: Will-Retry-Until in a %s report", i, r.Kind)
		}
	}
	return errs
}

// returnedProblems checks the third part: the whole message for a failure
// report unless RET=HDRS or the size cap says headers only; headers only
// for every other kind (RFC 3461 §4.3).
func returnedProblems(part parsedPart, r Report, original string, headersOnly bool) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	global := r.Env.SMTPUTF8
	limit := r.MaxReturnSize
	if limit == 0 {
		limit = DefaultMaxReturnSize
	}
	full := r.Kind == Failed && r.Env.Ret != smtp.ReturnHeaders && int64(len(original)) <= limit && !headersOnly
	if headersOnly && fits([]byte(original), global) {
		fail("the text says the message could not be attached, but it fits as it is")
	}
	wantType := map[[2]bool]string{
		{true, false}: "message/rfc822", {true, true}: "message/global",
		{false, false}: "text/rfc822-headers", {false, true}: "message/global-headers",
	}[[2]bool{full, global}]
	if part.mediaType != wantType {
		fail("part 3 is %s, want %s", part.mediaType, wantType)
	}
	origHeader := original
	if i := strings.Index(original, "\r\n\r\n"); i >= 0 {
		origHeader = original[:i+2]
	}
	if full {
		if _, err := mail.ReadMessage(bytes.NewReader(part.body)); err != nil {
			fail("returned message does not parse: %v", err)
		}
		want := original
		if !strings.HasSuffix(want, "\r\n") {
			want += "\r\n" // a report ends every line
		}
		if fits([]byte(original), global) && string(part.body) != want && !blankLineInserted(string(part.body), want) {
			fail("returned message differs from the original")
		}
		if !fits([]byte(original), global) && !bytes.Contains(part.body, []byte("\r\n")) {
			fail("converted message is empty")
		}
		return errs
	}
	// Headers only: a header section and nothing after it.
	m, err := mail.ReadMessage(bytes.NewReader(append(append([]byte(nil), part.body...), "\r\n"...)))
	if err != nil {
		fail("returned headers do not parse: %v", err)
	} else if rest, _ := io.ReadAll(m.Body); len(rest) > 0 {
		fail("returned headers are followed by a body: %q", rest)
	}
	if fits([]byte(origHeader), global) && strings.HasSuffix(origHeader, "\r\n") && string(part.body) != origHeader &&
		!strings.HasPrefix(origHeader, string(part.body)) {
		fail("returned headers differ from the original's:\n%s", part.body)
	}
	return errs
}

// blankLineInserted reports whether got is want with one CRLF inserted at a
// line start: the repair of a header section that a line without a colon
// ends.
func blankLineInserted(got, want string) bool {
	if len(got) != len(want)+2 {
		return false
	}
	i := 0
	for i < len(want) && got[i] == want[i] {
		i++
	}
	return (i == 0 || got[i-1] == '\n') && got[i:i+2] == "\r\n" && got[i+2:] == want[i:]
}

// printableUTF8 reports whether s is valid UTF-8 without control
// characters, so that a report can show it unchanged.
func printableUTF8(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return true
}

// sameAddress reports whether two addresses are the same once parsed by
// net/mail (which unquotes local parts).
func sameAddress(got, want string) bool {
	a, err := mail.ParseAddress("<" + want + ">")
	return err == nil && a.Address == got
}

// TestReportsParse checks every golden case, and variations of RET, the cap
// and SMTPUTF8, with the independent parser.
func TestReportsParse(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) { checkReport(t, c.build(t), c.report, c.original) })
	}
	for _, c := range goldenCases() {
		for _, ret := range []smtp.DSNReturn{smtp.ReturnNone, smtp.ReturnFull, smtp.ReturnHeaders} {
			for _, limit := range []int64{0, -1, 100, 1 << 20} {
				c := c
				env := *c.report.Env
				env.Ret = ret
				c.report.Env = &env
				c.report.MaxReturnSize = limit
				t.Run(fmt.Sprintf("%s/ret=%s/cap=%d", c.name, ret, limit), func(t *testing.T) {
					checkReport(t, c.build(t), c.report, c.original)
				})
			}
		}
	}
}

// TestReturnedParts pins down what the third part holds for RET and the cap.
func TestReturnedParts(t *testing.T) {
	base := goldenCases()[0]
	tests := []struct {
		name     string
		kind     Kind
		ret      smtp.DSNReturn
		limit    int64
		wantType string
		wantBody bool
	}{
		{"failed default returns all", Failed, smtp.ReturnNone, 0, "message/rfc822", true},
		{"failed FULL returns all", Failed, smtp.ReturnFull, 0, "message/rfc822", true},
		{"failed HDRS returns headers", Failed, smtp.ReturnHeaders, 0, "text/rfc822-headers", false},
		{"failed over the cap returns headers", Failed, smtp.ReturnFull, 200, "text/rfc822-headers", false},
		{"failed at the cap returns all", Failed, smtp.ReturnFull, int64(len(originalASCII)), "message/rfc822", true},
		{"failed negative cap returns headers", Failed, smtp.ReturnFull, -1, "text/rfc822-headers", false},
		{"delayed returns headers", Delayed, smtp.ReturnFull, 0, "text/rfc822-headers", false},
		{"relayed returns headers", Relayed, smtp.ReturnFull, 0, "text/rfc822-headers", false},
		{"delivered returns headers", Delivered, smtp.ReturnNone, 0, "text/rfc822-headers", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base.report
			env := *r.Env
			env.Ret = tt.ret
			r.Env, r.Kind, r.MaxReturnSize = &env, tt.kind, tt.limit
			if tt.kind != Failed {
				r.Rcpts = []Recipient{{Index: 1, Addr: path("carol", "legacy.example"), Reply: smtp.NewReply(250, "2.0.0", "Ok")}}
			}
			msg, err := Build(r, strings.NewReader(originalASCII))
			if err != nil {
				t.Fatal(err)
			}
			p := mustParse(t, msg)
			if len(p.parts) != 3 {
				t.Fatalf("%d parts", len(p.parts))
			}
			got := p.parts[2]
			if got.mediaType != tt.wantType {
				t.Errorf("third part is %s, want %s", got.mediaType, tt.wantType)
			}
			hasBody := bytes.Contains(got.body, []byte("the figures are attached"))
			if hasBody != tt.wantBody {
				t.Errorf("body returned = %v, want %v", hasBody, tt.wantBody)
			}
			if !bytes.Contains(got.body, []byte("Subject: Quarterly figures")) {
				t.Error("the original's header is missing")
			}
		})
	}
}
