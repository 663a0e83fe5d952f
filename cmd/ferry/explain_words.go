package main

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/route"
)

// explanation is what "ferry explain" reports, as text or JSON.
type explanation struct {
	Message string        `json:"message"`
	Size    int64         `json:"size"`
	From    string        `json:"from"`
	To      string        `json:"to"`
	Route   string        `json:"route"`
	Policy  explainPolicy `json:"policy"`
	Targets []string      `json:"targets,omitempty"`
	// TLSPolicy says per MX host which TLS policy applies and why.
	TLSPolicy []string `json:"tls_policy,omitempty"`
	NextHop   string   `json:"next_hop,omitempty"`
	Relay     string   `json:"relay,omitempty"`
	// Source is "probe" (connected just now) or "cache" (the running
	// server's hop-capability cache).
	Source   string    `json:"source,omitempty"`
	Seen     time.Time `json:"seen,omitzero"`
	TLS      bool      `json:"tls"`
	Keywords []string  `json:"keywords,omitempty"`
	// Needs lists what the message requires of a hop, e.g. "8BITMIME".
	Needs []string `json:"needs"`
	// Parts is the number of leaf MIME parts.
	Parts        int               `json:"parts"`
	Conversion   *downgrade.Report `json:"conversion,omitempty"`
	ConvertError string            `json:"convert_error,omitempty"`
	Plan         string            `json:"plan,omitempty"`
	Reply        string            `json:"reply,omitempty"`
	Explanation  []string          `json:"explanation"`
	// Signatures say what happens to DKIM signatures and ARC (see
	// signatureSentences).
	Signatures []string `json:"signatures,omitempty"`
	Error      string   `json:"error,omitempty"`

	needs           deliver.MessageNeeds
	hop             *deliver.HopInfo
	plan            deliver.TransferPlan
	convertEnhanced string
}

// explainPolicy is a route's policy as the configuration writes it.
type explainPolicy struct {
	EightBit   string `json:"eightbit"`
	DKIMSigned string `json:"dkim_signed"`
	TLS        string `json:"tls"`
}

func policyOf(p route.Policy) explainPolicy {
	return explainPolicy{EightBit: p.EightBit.String(), DKIMSigned: p.DKIMSigned.String(), TLS: p.TLS.String()}
}

// needsList names what a message requires of a hop.
func needsList(n deliver.MessageNeeds) []string {
	out := []string{}
	add := func(on bool, s string) {
		if on {
			out = append(out, s)
		}
	}
	add(n.EightBit && !n.Binary, "8BITMIME")
	add(n.Binary, "BINARYMIME")
	add(n.LongLines, "encoding of lines over 998 octets")
	add(n.SMTPUTF8, "SMTPUTF8")
	add(n.DSN, "DSN")
	add(n.RequireTLS, "REQUIRETLS")
	return out
}

// countLeaves counts a message's leaf MIME parts the way the converter
// numbers them (multipart bodies and message/rfc822 are walked); malformed
// structure counts as one part.
func countLeaves(b []byte) int {
	msg, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		return 1
	}
	return leavesOf(msg.Header.Get("Content-Type"), msg.Body, 0)
}

func leavesOf(contentType string, body io.Reader, depth int) int {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || depth > 50 {
		return 1
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		mr := multipart.NewReader(body, params["boundary"])
		n := 0
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				break
			}
			n += leavesOf(p.Header.Get("Content-Type"), p, depth+1)
		}
		return max(n, 1)
	case mt == "message/rfc822" || mt == "message/global":
		msg, err := mail.ReadMessage(body)
		if err != nil {
			return 1
		}
		return leavesOf(msg.Header.Get("Content-Type"), msg.Body, depth+1)
	}
	return 1
}

// partsPhrase lists part paths in words: "parts 1.1 and 1.2", "the body".
func partsPhrase(paths []string) string {
	var named []string
	body := false
	for _, p := range paths {
		if p == "" {
			body = true
			continue
		}
		named = append(named, p)
	}
	var out string
	switch len(named) {
	case 0:
	case 1:
		out = "part " + named[0]
	default:
		out = "parts " + strings.Join(named[:len(named)-1], ", ") + " and " + named[len(named)-1]
	}
	if body {
		if out != "" {
			return "the body and " + out
		}
		return "the body"
	}
	return out
}

// hopSentence says what the hop does, and how fresh that knowledge is:
// "next hop H does not offer 8BITMIME (seen 3 min ago)".
func hopSentence(ex *explanation, does string) string {
	when := "probed just now"
	if ex.Source == "cache" {
		when = "seen " + ago(time.Since(ex.Seen)) + " ago"
	}
	return "next hop " + ex.NextHop + " " + does + " (" + when + ")"
}

// sentences says what Ferry would do and why.
func sentences(ex *explanation, pol route.Policy) []string {
	var out []string
	n, hop, p := ex.needs, ex.hop, ex.plan
	switch {
	case !hop.ESMTP:
		out = append(out, hopSentence(ex, "refused EHLO, so Ferry falls back to HELO and the hop offers no extensions at all"))
	case n.Binary && hop.Keywords.Has("BINARYMIME"):
		out = append(out, hopSentence(ex, "offers BINARYMIME"))
	case n.EightBit && hop.Keywords.Has("8BITMIME"):
		out = append(out, hopSentence(ex, "offers 8BITMIME"))
	case n.EightBit:
		out = append(out, hopSentence(ex, "does not offer 8BITMIME"))
	default:
		out = append(out, hopSentence(ex, "accepts the session"))
	}
	out = append(out, contentSentences(ex)...)
	out = append(out, decisionSentences(ex, pol)...)
	if p.ALabels {
		out = append(out, "the hop lacks SMTPUTF8: internationalised domains go as A-labels (RFC 5890), which loses nothing")
	}
	if p.SMTPUTF8 {
		out = append(out, "MAIL FROM carries SMTPUTF8 (RFC 6531)")
	}
	if p.DSN == deliver.DSNDropped {
		out = append(out, "the hop lacks DSN: the DSN parameters are left out (RFC 3461 §4)")
	}
	if p.RelayedDSN {
		out = append(out, `the sender asked for NOTIFY=SUCCESS, so Ferry sends it an "Action: relayed" DSN (RFC 3461 §5.2.2)`)
	}
	switch {
	case ex.Reply != "":
		// Nothing is sent: the session does not matter.
	case hop.TLS:
		out = append(out, "the session runs over TLS ("+hop.TLSVersion+")")
	case pol.TLS == route.TLSRequired && !hop.Keywords.Has("STARTTLS"):
		out = append(out, "route policy is tls=required and the hop does not offer STARTTLS: delivery defers with 451 4.7.10 and bounces with 5.7.10 at expiry")
	case pol.TLS == route.TLSNone:
		out = append(out, "route policy is tls=none: the session is not encrypted")
	case hop.Keywords.Has("STARTTLS"):
		out = append(out, "the hop offers STARTTLS but the handshake failed: the session is not encrypted")
	default:
		out = append(out, "the hop does not offer STARTTLS: the session is not encrypted")
	}
	return out
}

// contentSentences describe what in the message matters to the hop.
func contentSentences(ex *explanation) []string {
	n := ex.needs
	var out []string
	var changed []string
	if ex.Conversion != nil && ex.plan.Convert && ex.Reply == "" {
		for _, part := range ex.Conversion.Parts {
			changed = append(changed, part.Path)
		}
	}
	what := "8-bit text"
	if n.Binary || n.LongLines {
		what = "content a 7-bit hop cannot take as it is (8-bit, binary or over-long lines)"
		if len(changed) > 0 && ex.Conversion.EightBit {
			// Converted for 8BITMIME: the parts counted are those
			// that even this hop cannot take.
			what = "content an 8BITMIME hop cannot take as it is (binary or over-long lines)"
		}
	}
	switch {
	case len(changed) > 0 && ex.Parts >= len(changed) && ex.Parts > 1:
		out = append(out, fmt.Sprintf("this message has %d of %d parts with %s", len(changed), ex.Parts, what))
	case len(changed) > 0:
		out = append(out, "this message has "+what)
	case n.EightBit || n.Binary || n.LongLines:
		out = append(out, "this message has "+what)
	default:
		out = append(out, "this message is 7-bit clean")
	}
	if n.UTF8Headers {
		out = append(out, "its header holds 8-bit (UTF-8) text")
	}
	if n.LongLines {
		out = append(out, "it has lines over 998 octets, which no SMTP hop may receive as they are (RFC 5321 §4.5.3.1.6)")
	}
	if n.DKIMSigned {
		out = append(out, "it carries a DKIM signature")
	}
	return out
}

// decisionSentences say what the plan does with the content.
func decisionSentences(ex *explanation, pol route.Policy) []string {
	n, p := ex.needs, ex.plan
	if ex.Reply != "" {
		why := "Ferry would fail the recipient at once"
		switch {
		case strings.Contains(ex.Reply, "5.6.3") && n.DKIMSigned && pol.DKIMSigned == route.Bounce:
			why = "route policy for DKIM-signed mail is bounce: Ferry would not break the signature and fails the recipient at once"
		case strings.Contains(ex.Reply, "5.6.3"):
			why = "route policy is " + pol.EightBit.String() + ": Ferry must not send 8-bit content to this hop (RFC 6152 §3) and fails the recipient at once"
		case strings.Contains(ex.Reply, "5.3.4"):
			why = fmt.Sprintf("the message (%d octets) is larger than the hop's SIZE limit (%s): Ferry fails the recipient at once", ex.Size, ex.hop.Keywords.Param("SIZE"))
		}
		return []string{why + " with " + ex.Reply}
	}
	if !p.Convert {
		switch {
		case p.Body == "BINARYMIME":
			return []string{"it goes as it is with BODY=BINARYMIME over BDAT (RFC 3030)"}
		case n.EightBit:
			return []string{"it goes as it is with BODY=8BITMIME; nothing is converted"}
		}
		return []string{"it goes as it is; nothing is converted"}
	}
	if ex.ConvertError != "" {
		enh := ex.convertEnhanced
		if enh == "" {
			enh = "5.6.5"
		}
		return []string{"route policy is convert, but the converter cannot convert this message losslessly (" + ex.ConvertError +
			"): the recipient fails with 554 " + enh + " rather than receive something damaged"}
	}
	var out []string
	byCTE := map[string][]string{}
	var ctes []string
	for _, part := range ex.Conversion.Parts {
		if _, ok := byCTE[part.NewCTE]; !ok {
			ctes = append(ctes, part.NewCTE)
		}
		byCTE[part.NewCTE] = append(byCTE[part.NewCTE], part.Path)
	}
	var how []string
	for _, cte := range ctes {
		how = append(how, partsPhrase(byCTE[cte])+" will be sent "+cte)
	}
	s := "route policy is convert"
	if len(how) > 0 {
		s += ": " + strings.Join(how, ", ")
	}
	out = append(out, s)
	if n := ex.Conversion.Kept8Bit; n > 0 {
		s := "1 part with 8-bit text goes as it is with BODY=8BITMIME"
		if n > 1 {
			s = fmt.Sprintf("%d parts with 8-bit text go as they are with BODY=8BITMIME", n)
		}
		out = append(out, s)
	}
	if len(ex.Conversion.Headers) > 0 {
		var fields []string
		for _, h := range ex.Conversion.Headers {
			fields = append(fields, h.Field)
		}
		out = append(out, "header fields "+strings.Join(fields, ", ")+" will be RFC 2047-encoded")
	}
	return out
}

// printExplanation writes the explanation for people.
func printExplanation(w io.Writer, ex *explanation) {
	fmt.Fprintf(w, "Message:   %s, %d octets, %d %s\n", ex.Message, ex.Size, ex.Parts, plural(ex.Parts, "MIME part"))
	fmt.Fprintf(w, "Envelope:  from %s to <%s>\n", ex.From, ex.To)
	fmt.Fprintf(w, "Route:     %s (eightbit=%s, dkim_signed=%s, tls=%s)\n", ex.Route, ex.Policy.EightBit, ex.Policy.DKIMSigned, ex.Policy.TLS)
	for i, l := range ex.TLSPolicy {
		head := "TLS:       "
		if i > 0 {
			head = "           "
		}
		fmt.Fprintf(w, "%s%s\n", head, l)
	}
	if ex.NextHop != "" {
		src := "probed just now"
		if ex.Source == "cache" {
			src = "from the server's cache, seen " + ago(time.Since(ex.Seen)) + " ago"
		}
		fmt.Fprintf(w, "Next hop:  %s (%s, %s)\n", ex.NextHop, ex.Relay, src)
		fmt.Fprintf(w, "Offers:    %s\n", strings.Join(ex.Keywords, " "))
	}
	needs := "nothing beyond plain SMTP"
	if len(ex.Needs) > 0 {
		needs = strings.Join(ex.Needs, ", ")
	}
	fmt.Fprintf(w, "Needs:     %s\n", needs)
	if ex.Conversion != nil && ex.plan.Convert && ex.Reply == "" {
		for _, part := range ex.Conversion.Parts {
			name := "part " + part.Path
			if part.Path == "" {
				name = "body"
			}
			old := part.OldCTE
			if old == "" {
				old = "(no CTE)"
			}
			fmt.Fprintf(w, "  %-10s %-24s %s → %s, %d → %d octets\n", name, part.ContentType, old, part.NewCTE, part.BytesIn, part.BytesOut)
		}
	}
	if ex.Plan != "" {
		fmt.Fprintf(w, "Plan:      %s\n", ex.Plan)
	}
	if ex.Reply != "" {
		fmt.Fprintf(w, "Outcome:   fail at once: %s\n", ex.Reply)
	}
	if ex.Error != "" {
		fmt.Fprintf(w, "Error:     %s\n", ex.Error)
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, capitalize(strings.Join(ex.Explanation, "; "))+".")
	if len(ex.Signatures) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Signatures: "+capitalize(strings.Join(ex.Signatures, "; "))+".")
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
