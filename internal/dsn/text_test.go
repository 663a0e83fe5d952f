package dsn

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// TestExplanations checks the plain-English text for the common enhanced
// codes, through Build, so that the words reach the report.
func TestExplanations(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		reply   smtp.Reply
		expired bool
		want    string
	}{
		{"8-bit refused", Failed, smtp.NewReply(554, "5.6.3", "Conversion required but prohibited by policy"), false,
			"does not accept 8-bit mail and this route is set not to convert it"},
		{"conversion failed", Failed, smtp.NewReply(554, "5.6.5", "Conversion failed"), false, "the conversion failed"},
		{"too big", Failed, smtp.NewReply(552, "5.3.4", "Message size exceeds fixed maximum message size"), false,
			"larger than the receiving server accepts"},
		{"needs SMTPUTF8", Failed, smtp.NewReply(553, "5.6.7", "SMTPUTF8 required"), false, "does not support internationalised email (SMTPUTF8)"},
		{"no such user", Failed, smtp.NewReply(550, "5.1.1", "User unknown"), false, "this address does not exist"},
		{"TLS required", Failed, smtp.NewReply(554, "5.7.10", "TLS required by route"), false, "requires an encrypted (TLS) connection"},
		{"TLS required, expired", Failed, smtp.NewReply(451, "4.7.10", "TLS required by route but next hop does not offer STARTTLS"), true,
			"requires an encrypted (TLS) connection"},
		{"expired", Failed, smtp.NewReply(451, "4.4.1", "Connection timed out"), true, "could not be delivered for 5 days"},
		{"expired code only", Failed, smtp.NewReply(451, "4.4.7", "Message expired"), false, "could not be delivered for 5 days"},
		{"expired, never answered", Failed, smtp.Reply{}, true, "No server for this recipient answered"},
		{"null MX", Failed, smtp.NewReply(556, "5.1.10", "Recipient address has null MX"), false, "null MX record"},
		{"loop", Failed, smtp.NewReply(554, "5.4.6", "Too many hops"), false, "went round in a loop"},
		{"mailbox full", Failed, smtp.NewReply(552, "5.2.2", "Mailbox full"), false, "mailbox is full"},
		{"policy", Failed, smtp.NewReply(550, "5.7.1", "Rejected by policy"), false, "refused the message by its policy"},
		{"other permanent", Failed, smtp.NewReply(550, "", "Go away"), false, "refused the message permanently"},
		{"delayed", Delayed, smtp.NewReply(451, "4.3.0", "Try later"), false, "has not accepted the message yet"},
		{"delayed mailbox full", Delayed, smtp.NewReply(452, "4.2.2", "Over quota"), false, "The problem may be temporary. The recipient's mailbox is full"},
		{"delivered", Delivered, smtp.NewReply(250, "2.0.0", "Ok"), false, "accepted the message for this recipient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Kind: tt.kind, ReportingMTA: "relay.example.com", Env: baseEnv(), Date: tReport,
				MessageID: "x@relay.example.com",
				Rcpts: []Recipient{{Index: 0, Addr: path("bob", "example.org"), Reply: tt.reply,
					RemoteMTA: "mx.example.org[192.0.2.1]:25", Expired: tt.expired}}}
			msg, err := Build(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			text := string(mustParse(t, msg).parts[0].body)
			flat := strings.Join(strings.Fields(text), " ")
			if !strings.Contains(flat, tt.want) {
				t.Errorf("text part lacks %q:\n%s", tt.want, text)
			}
			if tt.reply.Code != 0 && !strings.Contains(flat, tt.reply.Text()) {
				t.Errorf("text part does not quote the reply %q:\n%s", tt.reply, text)
			}
		})
	}
}

// TestStatus checks the Status field: the reply's enhanced code when given,
// otherwise one mapped from the basic code, in the class the action needs.
func TestStatus(t *testing.T) {
	tests := []struct {
		kind    Kind
		reply   smtp.Reply
		expired bool
		want    smtp.EnhancedCode
	}{
		{Failed, smtp.NewReply(550, "5.1.1"), false, "5.1.1"},
		{Failed, smtp.NewReply(550, ""), false, "5.0.0"},
		{Failed, smtp.NewReply(554, ""), false, "5.0.0"},
		{Failed, smtp.NewReply(551, ""), false, "5.1.6"},
		{Failed, smtp.NewReply(501, ""), false, "5.5.4"},
		{Failed, smtp.NewReply(535, ""), false, "5.7.8"},
		{Failed, smtp.NewReply(550, "5.1"), false, "5.0.0"}, // invalid enhanced code: mapped
		{Failed, smtp.NewReply(451, "4.4.7"), true, "4.4.7"},
		{Failed, smtp.NewReply(451, "4.4.1"), true, "4.4.7"},
		{Failed, smtp.NewReply(451, "4.7.10"), true, "5.7.10"},
		{Failed, smtp.NewReply(451, "4.7.5"), true, "5.7.5"},
		{Failed, smtp.NewReply(451, "4.7.1"), true, "4.4.7"},
		{Failed, smtp.Reply{}, true, "4.4.7"},
		{Failed, smtp.NewReply(550, ""), true, "4.4.7"},
		{Failed, smtp.NewReply(554, "5.7.10"), true, "5.7.10"},
		{Failed, smtp.Reply{}, false, "5.0.0"},
		{Failed, smtp.NewReply(250, "2.0.0"), false, "5.0.0"},
		{Delayed, smtp.NewReply(450, ""), false, "4.0.0"},
		{Delayed, smtp.NewReply(421, ""), false, "4.3.2"},
		{Delayed, smtp.NewReply(451, "4.7.1"), false, "4.7.1"},
		{Delayed, smtp.NewReply(550, "5.1.1"), false, "4.1.1"},
		{Delayed, smtp.Reply{}, false, "4.0.0"},
		{Relayed, smtp.NewReply(250, ""), false, "2.0.0"},
		{Relayed, smtp.NewReply(250, "2.6.0"), false, "2.6.0"},
		{Delivered, smtp.NewReply(250, "2.1.5"), false, "2.1.5"},
		{Delivered, smtp.Reply{}, false, "2.0.0"},
	}
	for _, tt := range tests {
		got := Recipient{Reply: tt.reply, Expired: tt.expired}.Status(tt.kind)
		if got != tt.want {
			t.Errorf("%s %q expired=%v: Status = %s, want %s", tt.kind, tt.reply, tt.expired, got, tt.want)
		}
	}
}

// TestFieldEncoding checks the address and text encodings of the status part.
func TestFieldEncoding(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"ascii addr", addrField(path("bob", "example.org"), false), "rfc822; bob@example.org"},
		{"quoted addr", addrField(path("john doe", "example.org"), false), `rfc822; "john doe"@example.org`},
		{"utf-8 addr global", addrField(path("田中", "例え.example"), true), "utf-8; 田中@例え.example"},
		{"utf-8 addr 7bit", addrField(path("josé", "example.org"), false), `utf-8; jos\x{E9}@example.org`},
		{"xtext specials", utf8AddrXtext(`a+b=c\d e`), `a\x{2B}b\x{3D}c\x{5C}d\x{20}e`},
		{"orcpt rfc822", origRcptField("rfc822;bob@example.org", false), "rfc822; bob@example.org"},
		{"orcpt utf-8 7bit", origRcptField("utf-8;田@example.org", false), `utf-8; \x{7530}@example.org`},
		{"orcpt other type 8bit", origRcptField("x400;\xc3\xa9", false), "x400; +C3+A9"},
		{"orcpt bad", origRcptField("no-separator", false), ""},
		{"orcpt bad type", origRcptField("rfc 822;a@b", false), ""},
		{"envid plain", envIDField("QQ314159"), "QQ314159"},
		{"envid 8bit", envIDField("a\xffb"), "a+FFb"},
		{"text controls", cleanText("a\r\nb\x00c\x7f", false), "a  b c "},
		{"text utf-8 7bit", cleanText("café", false), `caf\x{E9}`},
		{"text utf-8 global", cleanText("café", true), "café"},
		{"text invalid", cleanText("a\xffb", true), "a?b"},
		{"text C1", cleanText("a\u0085b", true), "a b"},
		{"host", remoteHost("mx.example.org[192.0.2.1]:25"), "mx.example.org"},
		{"host ip", remoteHost("[192.0.2.1]:25"), "192.0.2.1"},
		{"host v6", remoteHost("[2001:db8::1]:25"), "2001:db8::1"},
		{"host plain", remoteHost("mx.example.org"), "mx.example.org"},
		{"host port", remoteHost("mx.example.org:2525"), "mx.example.org"},
		{"age days", age(tArrival, tArrival.Add(119*time.Hour)), "5 days"},
		{"age day", age(tArrival, tArrival.Add(25*time.Hour)), "1 day"},
		{"age hours", age(tArrival, tArrival.Add(4*time.Hour+10*time.Minute)), "4 hours"},
		{"size", sizeText(100 << 10), "100 KiB"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestWriteFieldFolding checks that fields fold at white space within 78
// octets and that a long run without white space is still broken well
// before 998 octets.
func TestWriteFieldFolding(t *testing.T) {
	var b bytes.Buffer
	writeField(&b, "Diagnostic-Code", "smtp; 550 5.7.1 "+strings.Repeat("word ", 40)+strings.Repeat("x", 2500))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n")
	for i, l := range lines {
		if len(l) > hardLine+1 {
			t.Errorf("line %d is %d octets", i, len(l))
		}
		if i > 0 && l[0] != ' ' {
			t.Errorf("continuation line %d does not start with white space: %q", i, l)
		}
		if len(l) > maxLine && !strings.Contains(l, "xxxxxxxx") {
			t.Errorf("line %d is %d octets though it could fold: %q", i, len(l), l)
		}
	}
	unfolded := strings.ReplaceAll(strings.Join(lines, "\r\n"), "\r\n ", "")
	if strings.Count(unfolded, "x") != 2500 {
		t.Error("folding lost characters")
	}
}
