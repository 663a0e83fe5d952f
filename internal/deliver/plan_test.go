package deliver

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// ext builds an extension set from "KEYWORD" or "KEYWORD params" strings.
func ext(kws ...string) smtp.Extensions {
	e := smtp.Extensions{}
	for _, k := range kws {
		kw, p, _ := strings.Cut(k, " ")
		e[strings.ToUpper(kw)] = p
	}
	return e
}

// TestPlan covers every row of DESIGN.md §1's table, in the default and
// the "otherwise" column, plus the BODY= rules.
func TestPlan(t *testing.T) {
	bounce := route.Policy{EightBit: route.Bounce}
	dkimBounce := route.Policy{DKIMSigned: route.Bounce}
	domino := ext("SIZE 10240000", "PIPELINING", "HELP") // the §1 hop: no 8BITMIME
	full := ext("SIZE", "PIPELINING", "8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES")
	tests := []struct {
		name  string
		needs MessageNeeds
		ext   smtp.Extensions
		pol   route.Policy
		want  string // plan String, or the reply when wantReply
		reply string
	}{
		// 7-bit content.
		{name: "7bit to plain hop", needs: MessageNeeds{Size: 100}, ext: ext(), want: "body=7BIT, DATA"},
		{name: "7bit never claims 8BITMIME", needs: MessageNeeds{Size: 100}, ext: full, want: "body=7BIT, DATA, size=100"},

		// Row 1: 8BITMIME.
		{name: "8bit to 8BITMIME hop", needs: MessageNeeds{EightBit: true, Size: 5}, ext: ext("8BITMIME"), want: "body=8BITMIME, DATA"},
		{name: "8bit to Domino converts", needs: MessageNeeds{EightBit: true, Size: 5}, ext: domino, want: "body=8BITMIME→7BIT converted, DATA, size=5"},
		{name: "UTF-8 header address to SMTPUTF8 hop without 8BITMIME", needs: MessageNeeds{EightBit: true, SMTPUTF8: true, UTF8Headers: true, UTF8HeaderAddress: true}, ext: ext("SMTPUTF8"), reply: "554 5.6.3"},
		{name: "UTF-8 header address to SMTPUTF8 hop with 8BITMIME", needs: MessageNeeds{EightBit: true, SMTPUTF8: true, UTF8Headers: true, UTF8HeaderAddress: true}, ext: ext("SMTPUTF8", "8BITMIME"), want: "body=8BITMIME, DATA, smtputf8"},
		{name: "8bit to Domino bounce policy", needs: MessageNeeds{EightBit: true}, ext: domino, pol: bounce, reply: "554 5.6.3"},
		{name: "8bit bounce policy irrelevant with 8BITMIME", needs: MessageNeeds{EightBit: true}, ext: ext("8BITMIME"), pol: bounce, want: "body=8BITMIME, DATA"},
		{name: "8bit discarded 8BITMIME keyword (not in ext)", needs: MessageNeeds{EightBit: true}, ext: ext("CHUNKING", "BINARYMIME"), want: "body=8BITMIME→7BIT converted, DATA"},
		{name: "8bit DKIM signed converts by default", needs: MessageNeeds{EightBit: true, DKIMSigned: true}, ext: ext(), want: "body=8BITMIME→7BIT converted, DATA"},
		{name: "8bit DKIM signed with dkim bounce", needs: MessageNeeds{EightBit: true, DKIMSigned: true}, ext: ext(), pol: dkimBounce, reply: "554 5.6.3"},
		{name: "DKIM bounce irrelevant without conversion", needs: MessageNeeds{EightBit: true, DKIMSigned: true}, ext: ext("8BITMIME"), pol: dkimBounce, want: "body=8BITMIME, DATA"},

		// Row 2: BINARYMIME.
		{name: "binary to BINARYMIME+CHUNKING", needs: MessageNeeds{Binary: true, EightBit: true, LongLines: true}, ext: full, want: "body=BINARYMIME, BDAT"},
		{name: "binary, BINARYMIME without CHUNKING", needs: MessageNeeds{Binary: true, EightBit: true}, ext: ext("8BITMIME", "BINARYMIME"), want: "body=BINARYMIME→8BITMIME converted, DATA"},
		{name: "binary to 8BITMIME hop", needs: MessageNeeds{Binary: true, EightBit: true}, ext: ext("8BITMIME", "CHUNKING"), want: "body=BINARYMIME→8BITMIME converted, DATA"},
		{name: "binary without 8-bit octets to 8BITMIME hop", needs: MessageNeeds{Binary: true}, ext: ext("8BITMIME"), want: "body=BINARYMIME→7BIT converted, DATA"},
		{name: "binary to 7-bit hop", needs: MessageNeeds{Binary: true, EightBit: true}, ext: domino, want: "body=BINARYMIME→7BIT converted, DATA"},
		{name: "binary bounce policy", needs: MessageNeeds{Binary: true}, ext: ext("8BITMIME"), pol: bounce, reply: "554 5.6.3"},

		// Row 3: long lines.
		{name: "long lines 7bit", needs: MessageNeeds{LongLines: true}, ext: full, want: "body=7BIT→7BIT converted, DATA"},
		{name: "long lines 8bit with 8BITMIME", needs: MessageNeeds{LongLines: true, EightBit: true}, ext: ext("8BITMIME"), want: "body=8BITMIME→8BITMIME converted, DATA"},
		{name: "long lines with bounce policy still convert", needs: MessageNeeds{LongLines: true}, ext: ext(), pol: bounce, want: "body=7BIT→7BIT converted, DATA"},
		{name: "long lines of DKIM mail, dkim bounce", needs: MessageNeeds{LongLines: true, DKIMSigned: true}, ext: ext(), pol: dkimBounce, reply: "554 5.6.3"},

		// Row 4: SMTPUTF8.
		{name: "smtputf8 offered", needs: MessageNeeds{SMTPUTF8: true, UTF8LocalPart: true, UTF8Headers: true, EightBit: true}, ext: full, want: "body=8BITMIME, DATA, smtputf8"},
		{name: "smtputf8 A-labels", needs: MessageNeeds{SMTPUTF8: true}, ext: ext("8BITMIME"), want: "body=7BIT, DATA, smtputf8→A-labels"},
		{name: "smtputf8 local part", needs: MessageNeeds{SMTPUTF8: true, UTF8LocalPart: true}, ext: ext("8BITMIME"), reply: "553 5.6.7"},
		{name: "smtputf8 headers", needs: MessageNeeds{SMTPUTF8: true, UTF8Headers: true, EightBit: true}, ext: ext("8BITMIME"), reply: "554 5.6.9"},
		{name: "smtputf8 local part wins over headers", needs: MessageNeeds{SMTPUTF8: true, UTF8LocalPart: true, UTF8Headers: true}, ext: ext(), reply: "553 5.6.7"},

		// Row 5: SIZE.
		{name: "size over limit", needs: MessageNeeds{Size: 10240001}, ext: domino, reply: "552 5.3.4 Message size exceeds fixed maximum message size: 10240001 octets, the next hop's limit is 10240000"},
		{name: "size at limit", needs: MessageNeeds{Size: 10240000}, ext: domino, want: "body=7BIT, DATA, size=10240000"},
		{name: "SIZE 0 means no limit", needs: MessageNeeds{Size: 1 << 40}, ext: ext("SIZE 0"), want: "body=7BIT, DATA, size=1099511627776"},
		{name: "no SIZE keyword, no size param", needs: MessageNeeds{Size: 1 << 40}, ext: ext(), want: "body=7BIT, DATA"},
		{name: "size checked before conversion refusal", needs: MessageNeeds{Size: 20, EightBit: true}, ext: ext("SIZE 10"), pol: bounce, reply: "552 5.3.4"},

		// Row 6: DSN.
		{name: "dsn passed", needs: MessageNeeds{DSN: true, NotifySuccess: true}, ext: ext("DSN"), want: "body=7BIT, DATA, dsn=passed"},
		{name: "dsn dropped", needs: MessageNeeds{DSN: true}, ext: ext(), want: "body=7BIT, DATA, dsn=dropped"},
		{name: "dsn dropped, relayed owed", needs: MessageNeeds{DSN: true, NotifySuccess: true}, ext: ext(), want: "body=7BIT, DATA, dsn=dropped (relayed DSN owed)"},

		// Row 7: REQUIRETLS (route tls=required is a connection matter, see
		// client tests).
		{name: "requiretls offered", needs: MessageNeeds{RequireTLS: true}, ext: ext("REQUIRETLS"), want: "body=7BIT, DATA, requiretls"},
		{name: "requiretls missing fails", needs: MessageNeeds{RequireTLS: true}, ext: full, reply: "550 5.7.30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, r := Plan(tt.needs, tt.ext, tt.pol)
			if tt.reply != "" {
				if r == nil || !strings.HasPrefix(r.String(), tt.reply) {
					t.Fatalf("Plan = %v, reply %v; want reply %s", p, r, tt.reply)
				}
				return
			}
			if r != nil {
				t.Fatalf("Plan reply %v, want plan %q", r, tt.want)
			}
			if got := p.String(); got != tt.want {
				t.Errorf("Plan = %q, want %q", got, tt.want)
			}
			// The one rule that must never break (RFC 6152 §3).
			if (tt.needs.EightBit || tt.needs.Binary) && !p.Convert && !tt.ext.Has("8BITMIME") && !tt.ext.Has("BINARYMIME") {
				t.Errorf("8-bit content planned unconverted for a hop without 8BITMIME")
			}
			if p.Allow8Bit && !tt.ext.Has("8BITMIME") && p.Body != smtp.BodyBinaryMIME {
				t.Errorf("Allow8Bit for a hop without 8BITMIME")
			}
			if p.Body == smtp.Body8BitMIME && !tt.needs.EightBit {
				t.Errorf("claims 8BITMIME for 7-bit content")
			}
			if p.Chunking && p.Body != smtp.BodyBinaryMIME {
				t.Errorf("BDAT chosen for %s", p.Body)
			}
		})
	}
}

// TestWithContentSize: content converted or signed before the transaction
// is declared and checked at its exact size, and a refusal names the step
// that made it too large.
func TestWithContentSize(t *testing.T) {
	sized := TransferPlan{Convert: true, Size: 100}
	for _, c := range []struct {
		name                         string
		plan                         TransferPlan
		stored, converted, size, lim int64
		want, reply                  string
	}{
		{"fits", sized, 100, 150, 150, 150, "body=7BIT→7BIT converted, DATA, size=150", ""},
		{"no limit (SIZE 0)", sized, 100, 150, 180, 0, "body=7BIT→7BIT converted, DATA, size=180", ""},
		{"no SIZE offered", TransferPlan{Convert: true}, 100, 150, 180, 0, "body=7BIT→7BIT converted, DATA", ""},
		{"conversion", sized, 100, 150, 180, 120, "body=7BIT→7BIT converted, DATA, size=180 after conversion exceeds the next hop's SIZE 120",
			"552 5.3.4 Message size exceeds fixed maximum message size: 180 octets after conversion (100 before), the next hop's limit is 120"},
		{"signing", sized, 100, 150, 180, 160, "body=7BIT→7BIT converted, DATA, size=180 after signing exceeds the next hop's SIZE 160",
			"552 5.3.4 Message size exceeds fixed maximum message size: 180 octets after signing (150 before), the next hop's limit is 160"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, r := c.plan.WithContentSize(c.stored, c.converted, c.size, c.lim)
			if got := p.String(); got != c.want {
				t.Errorf("plan %q, want %q", got, c.want)
			}
			got := ""
			if r != nil {
				got = r.String()
			}
			if got != c.reply {
				t.Errorf("reply %q, want %q", got, c.reply)
			}
		})
	}
}

func TestNeedsOf(t *testing.T) {
	env := &smtp.Envelope{
		From: smtp.Path{LocalPart: "a", Domain: "b.example"},
		Rcpts: []smtp.Recipient{
			{Addr: smtp.Path{LocalPart: "x", Domain: "bücher.example"}},
			{Addr: smtp.Path{LocalPart: "jörg", Domain: "c.example"}, Notify: smtp.NotifySuccess},
		},
	}
	n := NeedsOf(env, []int{0}, downgrade.Needs{}, 10)
	if !n.SMTPUTF8 || n.UTF8LocalPart || n.DSN || n.Size != 10 {
		t.Errorf("rcpt 0: %+v", n)
	}
	n = NeedsOf(env, []int{0, 1}, downgrade.Needs{}, 0)
	if !n.SMTPUTF8 || !n.UTF8LocalPart || !n.DSN || !n.NotifySuccess {
		t.Errorf("rcpts 0,1: %+v", n)
	}
	env.EnvID = "abc"
	if n := NeedsOf(env, nil, downgrade.Needs{}, 0); !n.DSN || n.SMTPUTF8 {
		t.Errorf("envid only: %+v", n)
	}
}

func TestToALabels(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"München.example", "xn--mnchen-3ya.example"},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{"[192.0.2.1]", "[192.0.2.1]"},
	}
	for _, tt := range tests {
		got, err := ToALabels(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ToALabels(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"b\xffcher.example", "bü cher.example", strings.Repeat("ü", 60) + ".example"} {
		if got, err := ToALabels(bad); err == nil {
			t.Errorf("ToALabels(%q) = %q, want error", bad, got)
		}
	}
}

func TestHopCacheChanges(t *testing.T) {
	logs := &syncBuffer{}
	h := NewHopCache(slog.New(slog.NewTextHandler(logs, nil)))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := HopInfo{Hop: "domino.example:25", ESMTP: true, Keywords: ext("8BITMIME", "SIZE 10240000", "PIPELINING"), Seen: t0}
	if ch := h.Record(first); len(ch) != 0 {
		t.Errorf("first sighting reported changes %q", ch)
	}
	second := HopInfo{Hop: "domino.example:25", ESMTP: true, Keywords: ext("SIZE 5000000", "PIPELINING", "HELP"), TLS: true, Seen: t0.Add(time.Hour)}
	want := []string{"now uses TLS", "stopped offering 8BITMIME", "now offers HELP", `SIZE changed from "10240000" to "5000000"`}
	if ch := h.Record(second); !slices.Equal(ch, want) {
		t.Errorf("changes = %q, want %q", ch, want)
	}
	got, ok := h.Get("domino.example:25")
	if !ok || !got.FirstSeen.Equal(t0) || !got.Seen.Equal(t0.Add(time.Hour)) || !slices.Equal(got.Changes, want) {
		t.Errorf("Get = %+v", got)
	}
	// Nothing new: the last changes stay on record.
	third := second
	third.Seen = t0.Add(2 * time.Hour)
	if ch := h.Record(third); len(ch) != 0 {
		t.Errorf("unchanged hop reported %q", ch)
	}
	if got, _ := h.Get("domino.example:25"); !got.ChangedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("ChangedAt = %v", got.ChangedAt)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"hop domino.example:25: stopped offering 8BITMIME\"") {
		t.Errorf("no warning logged:\n%s", logs)
	}
	if all := h.All(); len(all) != 1 {
		t.Errorf("All = %v", all)
	}
}

func TestDescribeKeyword(t *testing.T) {
	if got := DescribeKeyword("8bitmime"); got != "can receive 8-bit MIME (RFC 6152)" {
		t.Errorf("DescribeKeyword(8bitmime) = %q", got)
	}
	if got := DescribeKeyword("X-UNKNOWN"); got != "" {
		t.Errorf("unknown keyword described as %q", got)
	}
}
