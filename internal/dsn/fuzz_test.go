package dsn

import (
	"strings"
	"testing"

	"github.com/ferrymta/ferry/internal/smtp"
)

// FuzzBuild builds reports from random replies, addresses, parameters and
// original messages and checks that every report parses with the standard
// library, carries every required field, and stays 7-bit with lines under
// 998 octets unless the message is internationalised. The committed seed
// corpus is in testdata/fuzz/FuzzBuild.
func FuzzBuild(f *testing.F) {
	f.Add(uint8(1), 550, "5.1.1", "User unknown\nin virtual table", "bob", "example.org", "rfc822;bob@example.org",
		"QQ1", "mx.example.org[192.0.2.1]:25", "alice@example.net", false, uint8(0), originalASCII, int64(0))
	f.Add(uint8(2), 451, "", "try later", "bob", "example.org", "", "", "", "alice@example.net", false, uint8(1), originalASCII, int64(100))
	f.Add(uint8(4), 250, "2.0.0", "Ok: queued", "carol", "legacy.example", "", "", "[203.0.113.9]:25", "alice@example.net",
		false, uint8(2), original8bit, int64(-1))
	f.Add(uint8(1), 553, "5.6.7", "caf\xc3\xa9 \xff", "\xe7\x94\xb0", "\xe4\xbe\x8b.example", "utf-8;\xe7\x94\xb0@\xe4\xbe\x8b.example",
		"E\x01", "mx[192.0.2.80]:25", "jos\xc3\xa9@ejemplo.example", true, uint8(0), originalUTF8, int64(0))
	f.Add(uint8(3), 0, "9.9.9", strings.Repeat("x", 2000), "a b\"c", "ex ample", "x400;\x00", strings.Repeat("+", 200),
		"\r\n", "\"x y\"@example.org", false, uint8(0), "no header at all", int64(5))
	f.Fuzz(func(t *testing.T, kind uint8, code int, enhanced, text, rcptLocal, rcptDomain, orcpt, envid, remote, sender string,
		utf8 bool, ret uint8, original string, maxReturn int64) {
		from, err := smtp.ParseReversePath("<" + sender + ">")
		if err != nil || from.IsNull() {
			from = path("alice", "example.net")
		}
		env := &smtp.Envelope{ID: "FUZZ", From: from, SMTPUTF8: utf8, EnvID: envid, Arrival: tArrival,
			Ret:   []smtp.DSNReturn{smtp.ReturnNone, smtp.ReturnFull, smtp.ReturnHeaders}[ret%3],
			Rcpts: []smtp.Recipient{{Addr: path(rcptLocal, rcptDomain), ORcpt: orcpt}}}
		if rcptLocal == "" && rcptDomain == "" {
			env.Rcpts[0].Addr = path("x", "example.org")
		}
		k := Kind(kind%4) + Failed
		rc := Recipient{Index: 0, Addr: env.Rcpts[0].Addr, Reply: smtp.NewReply(code, smtp.EnhancedCode(enhanced), strings.Split(text, "\n")...),
			RemoteMTA: remote, LastAttempt: tReport, Expired: code%7 == 0}
		if k == Delayed {
			rc.WillRetryUntil = tReport.Add(96 * 3600e9)
		}
		r := Report{Kind: k, ReportingMTA: "relay.example.com", Env: env, Rcpts: []Recipient{rc, rc}, Date: tReport,
			MessageID: "FUZZ.x.1@relay.example.com", MaxReturnSize: maxReturn % (1 << 20)}
		msg, err := Build(r, strings.NewReader(original))
		if err != nil {
			if !utf8 && !from.IsASCII() {
				return // refused: a non-ASCII sender needs SMTPUTF8
			}
			t.Fatalf("Build: %v", err)
		}
		for _, e := range reportProblems(msg, r, original) {
			t.Error(e)
		}
		if t.Failed() {
			t.Logf("report:\n%s", msg)
		}
	})
}
