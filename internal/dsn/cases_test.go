package dsn

import (
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// Fixed times for reproducible reports.
var (
	tArrival = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	tReport  = time.Date(2026, 11, 28, 9, 31, 5, 0, time.UTC)
)

// crlf turns "\n" line ends into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// originalASCII is a small 7-bit message as the queue stores it.
var originalASCII = crlf(`Received: from client.example.net (client.example.net [192.0.2.7])
	by relay.example.com (Ferry) with ESMTP id 0K3V9QH6R2ABC
	for <bob@example.org>; Mon, 23 Nov 2026 09:30:00 +0000
From: Alice Example <alice@example.net>
To: Bob <bob@example.org>, Carol <carol@legacy.example>
Subject: Quarterly figures
Date: Mon, 23 Nov 2026 09:29:58 +0000
Message-ID: <figures-42@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello Bob, hello Carol,

the figures are attached in spirit.

Alice
`)

// original8bit is an 8-bit message without SMTPUTF8.
var original8bit = crlf("From: Alice Example <alice@example.net>\n" +
	"To: Carol <carol@legacy.example>\n" +
	"Subject: R\xc3\xa9union \xc3\xa0 10h\n" +
	"Message-ID: <reunion-7@example.net>\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: text/plain; charset=utf-8\n" +
	"Content-Transfer-Encoding: 8bit\n" +
	"\n" +
	"Voil\xc3\xa0 l'\xc3\xa9t\xc3\xa9 : d\xc3\xa9j\xc3\xa0 r\xc3\xa9gl\xc3\xa9.\n")

// originalUTF8 is an internationalised message (SMTPUTF8).
var originalUTF8 = crlf("From: Jos\xc3\xa9 <jos\xc3\xa9@ejemplo.example>\n" +
	"To: \xe7\x94\xb0\xe4\xb8\xad <\xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b\xe3\x81\x88.example>\n" +
	"Subject: \xc2\xa1Hola!\n" +
	"Message-ID: <hola-1@ejemplo.example>\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: text/plain; charset=utf-8\n" +
	"Content-Transfer-Encoding: 8bit\n" +
	"\n" +
	"\xc2\xbfQu\xc3\xa9 tal?\n")

func path(local, domain string) smtp.Path { return smtp.Path{LocalPart: local, Domain: domain} }

// baseEnv returns the envelope of originalASCII with three recipients.
func baseEnv() *smtp.Envelope {
	return &smtp.Envelope{
		ID:      "0K3V9QH6R2ABC",
		From:    path("alice", "example.net"),
		EnvID:   "QQ314159",
		Arrival: tArrival,
		Rcpts: []smtp.Recipient{
			{Addr: path("bob", "example.org"), ORcpt: "rfc822;bob@example.org"},
			{Addr: path("carol", "legacy.example"), Notify: smtp.NotifyFailure | smtp.NotifyDelay | smtp.NotifySuccess},
			{Addr: path("dave", "example.org")},
		},
	}
}

// goldenCase is one report built from fixed input.
type goldenCase struct {
	name     string
	report   Report
	original string // "" for none
}

// goldenCases returns a case for every report kind and for the special
// returns (headers only, too big, 8-bit, internationalised).
func goldenCases() []goldenCase {
	rep := func(k Kind, env *smtp.Envelope, rcpts ...Recipient) Report {
		return Report{Kind: k, ReportingMTA: "relay.example.com", Env: env, Rcpts: rcpts, Date: tReport,
			MessageID: reportMessageID(env.ID, k)}
	}
	userUnknown := Recipient{Index: 0, Addr: path("bob", "example.org"),
		Reply: smtp.NewReply(550, "5.1.1", "<bob@example.org>: Recipient address rejected:",
			"User unknown in virtual mailbox table"),
		RemoteMTA: "mx1.example.org[198.51.100.25]:25", LastAttempt: tReport.Add(-time.Second)}
	refused8bit := Recipient{Index: 1, Addr: path("carol", "legacy.example"),
		Reply:     smtp.NewReply(554, "5.6.3", "Conversion required and prohibited: next hop lacks 8BITMIME"),
		RemoteMTA: "domino.legacy.example[203.0.113.9]:25", LastAttempt: tReport.Add(-2 * time.Second)}
	expired := Recipient{Index: 2, Addr: path("dave", "example.org"), Expired: true,
		Reply: smtp.NewReply(451, "4.4.7",
			"Message expired after 5 days; last reply: 451 4.7.1 Greylisted, please try again later"),
		RemoteMTA: "mx2.example.org[198.51.100.26]:25", LastAttempt: tReport.Add(-25 * time.Minute)}
	deferred := Recipient{Index: 2, Addr: path("dave", "example.org"),
		Reply:     smtp.NewReply(452, "", "Mailbox temporarily over quota"),
		RemoteMTA: "mx2.example.org[198.51.100.26]:25", LastAttempt: tArrival.Add(4*time.Hour + 10*time.Minute),
		WillRetryUntil: tArrival.Add(120 * time.Hour)}
	accepted := smtp.NewReply(250, "2.0.0", "Ok: queued as 4Xy7Bq1Mz")

	var cases []goldenCase
	cases = append(cases, goldenCase{"failed", rep(Failed, baseEnv(), userUnknown, refused8bit), originalASCII})

	hdrs := baseEnv()
	hdrs.Ret = smtp.ReturnHeaders
	hdrs.EnvID = ""
	cases = append(cases, goldenCase{"failed_expired_hdrs", rep(Failed, hdrs, expired), originalASCII})

	d := rep(Delayed, baseEnv(), deferred)
	d.Date = tArrival.Add(4*time.Hour + 10*time.Minute)
	cases = append(cases, goldenCase{"delayed", d, originalASCII})

	cases = append(cases, goldenCase{"delivered", rep(Delivered, baseEnv(), Recipient{Index: 1,
		Addr: path("carol", "legacy.example"), Reply: accepted, RemoteMTA: "mail.legacy.example[203.0.113.10]:25",
		LastAttempt: tReport}), originalASCII})
	cases = append(cases, goldenCase{"relayed", rep(Relayed, baseEnv(), Recipient{Index: 1,
		Addr: path("carol", "legacy.example"), Reply: accepted, RemoteMTA: "domino.legacy.example[203.0.113.9]:25",
		LastAttempt: tReport}), originalASCII})

	big := rep(Failed, baseEnv(), userUnknown)
	big.MaxReturnSize = 256
	cases = append(cases, goldenCase{"failed_too_big", big, originalASCII})

	eight := baseEnv()
	eight.Body = smtp.Body8BitMIME
	cases = append(cases, goldenCase{"failed_8bit", rep(Failed, eight, Recipient{Index: 1,
		Addr: path("carol", "legacy.example"), Reply: smtp.NewReply(552, "5.3.4", "Message size exceeds fixed limit"),
		RemoteMTA: "domino.legacy.example[203.0.113.9]:25", LastAttempt: tReport}), original8bit})

	intl := &smtp.Envelope{
		ID: "0K3V9QH6R2XYZ", From: path("jos\xc3\xa9", "ejemplo.example"), SMTPUTF8: true, Arrival: tArrival,
		Rcpts: []smtp.Recipient{{Addr: path("\xe7\x94\xb0\xe4\xb8\xad", "\xe4\xbe\x8b\xe3\x81\x88.example"),
			ORcpt: "utf-8;\xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b\xe3\x81\x88.example"}},
	}
	cases = append(cases, goldenCase{"failed_smtputf8", rep(Failed, intl, Recipient{Index: 0,
		Addr:      path("\xe7\x94\xb0\xe4\xb8\xad", "\xe4\xbe\x8b\xe3\x81\x88.example"),
		Reply:     smtp.NewReply(553, "5.6.7", "SMTPUTF8 is required, but was not offered by host mx.xn--r8jz45g.example"),
		RemoteMTA: "mx.xn--r8jz45g.example[192.0.2.80]:25", LastAttempt: tReport}), originalUTF8})

	noEnh := rep(Failed, baseEnv(), Recipient{Index: 2, Addr: path("dave", "example.org"),
		Reply: smtp.NewReply(553, "", "sorry, that domain isn't in my list of allowed rcpthosts"), LastAttempt: tReport,
		RemoteMTA: "[198.51.100.30]:25"})
	cases = append(cases, goldenCase{"failed_no_enhanced_no_body", noEnh, ""})
	return cases
}

// reportMessageID is the Message-ID a Notifier gives a report (token "1").
func reportMessageID(id string, k Kind) string {
	if k == Failed || k == Delayed {
		return id + "." + k.String() + "@relay.example.com"
	}
	return id + "." + k.String() + ".1@relay.example.com"
}
