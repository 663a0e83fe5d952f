package dsn

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

func TestNotifierExpired(t *testing.T) {
	expiry := smtp.NewReply(451, "4.4.7", "Message expired after 5 days; last reply: 451 4.3.0 Try again later")
	tests := []struct {
		name       string
		history    []queue.Attempt
		wantRemote string
		wantLast   string
	}{
		{"expired at an attempt", []queue.Attempt{
			{At: tArrival.Add(time.Hour), State: queue.Deferred, Reply: reply451, RemoteMTA: "mx1.example.org[192.0.2.1]:25"},
			{At: tReport, State: queue.Failed, Expired: true, Reply: expiry, RemoteMTA: "mx2.example.org[192.0.2.2]:25"},
		}, "dns; mx2.example.org", "Sat, 28 Nov 2026 09:31:05 +0000"},
		{"expired at lease time", []queue.Attempt{
			{At: tArrival.Add(time.Hour), State: queue.Deferred, Reply: reply451, RemoteMTA: "mx1.example.org[192.0.2.1]:25"},
			{At: tReport, State: queue.Failed, Expired: true, Reply: expiry},
		}, "dns; mx1.example.org", "Mon, 23 Nov 2026 10:30:00 +0000"},
		{"never reached a hop", []queue.Attempt{
			{At: tArrival.Add(time.Hour), State: queue.Deferred, Reply: smtp.NewReply(451, "4.4.1", "Connection refused")},
			{At: tReport, State: queue.Failed, Expired: true, Reply: expiry},
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "")
			env := baseEnv()
			ev := finishedEvent(env, queue.Sent, queue.Sent, queue.Failed)
			st := &ev.Rcpts[2]
			st.Expired, st.LastReply, st.History = true, expiry, tt.history
			last := tt.history[len(tt.history)-1]
			st.RemoteMTA, st.LastAttempt = last.RemoteMTA, last.At
			f.n.OnEvent(ev)
			puts := f.put.all()
			if len(puts) != 1 {
				t.Fatalf("%d reports", len(puts))
			}
			rep := mustParse(t, puts[0].body)
			_, rcpts, err := parseStatus(rep.parts[1].body)
			if err != nil || len(rcpts) != 1 {
				t.Fatalf("status: %v, %d recipients", err, len(rcpts))
			}
			got := rcpts[0]
			if d := got.Get("Diagnostic-Code"); d != "smtp; "+expiry.String() {
				t.Errorf("Diagnostic-Code = %q, want the queue's expiry reply", d)
			}
			if s := got.Get("Status"); s != "4.4.7" {
				t.Errorf("Status = %q, want 4.4.7", s)
			}
			if r := got.Get("Remote-Mta"); r != tt.wantRemote {
				t.Errorf("Remote-MTA = %q, want %q", r, tt.wantRemote)
			}
			if l := got.Get("Last-Attempt-Date"); l != tt.wantLast {
				t.Errorf("Last-Attempt-Date = %q, want %q", l, tt.wantLast)
			}
			text := strings.Join(strings.Fields(string(rep.parts[0].body)), " ")
			if !strings.Contains(text, "could not be delivered for 5 days") || !strings.Contains(text, "last reply: 451 4.3.0 Try again later") {
				t.Errorf("text does not give the age and the last reply:\n%s", text)
			}
		})
	}
}

func TestNotifierMessageIDs(t *testing.T) {
	f := newFixture(t, "")
	tests := []struct {
		id   string
		kind Kind
		want string
	}{
		{"0K3V9QH6R2ABC", Failed, "0K3V9QH6R2ABC.failed@relay.example.com"},
		{"0K3V9QH6R2ABC", Delayed, "0K3V9QH6R2ABC.delayed@relay.example.com"},
		{"0K3V9QH6R2ABC", Relayed, "0K3V9QH6R2ABC.relayed.1@relay.example.com"},
		{"0K3V9QH6R2ABC", Delivered, "0K3V9QH6R2ABC.delivered.1@relay.example.com"},
		{"", Failed, "msg.failed.1@relay.example.com"},
		{"<odd id>", Failed, "oddid.failed@relay.example.com"},
	}
	for _, tt := range tests {
		got := f.n.messageID(tt.id, tt.kind)
		if got != tt.want || !isMessageID(got) {
			t.Errorf("messageID(%q, %s) = %q, want %q", tt.id, tt.kind, got, tt.want)
		}
	}
	// The default token makes success reports of one message distinct.
	n, err := NewNotifier(NotifierConfig{ReportingMTA: "relay.example.com"}, f.put.put)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := n.messageID("X", Relayed), n.messageID("X", Relayed); a == b {
		t.Errorf("two relayed reports share Message-ID %s", a)
	}
}

func TestNotifierRelayed(t *testing.T) {
	f := newFixture(t, "")
	env := baseEnv() // only carol (index 1) asked for SUCCESS
	f.n.Relayed(env, []int{0, 1, 2}, "domino.legacy.example[203.0.113.9]:25", reply250, bodyOf(originalASCII))
	puts := f.put.all()
	if len(puts) != 1 {
		t.Fatalf("%d reports, want 1", len(puts))
	}
	addrs, actions := reportRcpts(t, puts[0])
	if strings.Join(addrs, ",") != "carol@legacy.example" || actions[0] != "relayed" {
		t.Errorf("relayed report covers %v %v", addrs, actions)
	}
	if s := mustParse(t, puts[0].body).header.Get("Subject"); s != "Relayed Mail Report" {
		t.Errorf("Subject = %q", s)
	}
	// Nobody asked: nothing. Null sender: nothing.
	f.n.Relayed(env, []int{0, 2}, "x[192.0.2.1]:25", reply250, nil)
	bounce := baseEnv()
	bounce.From = smtp.Path{}
	f.n.Relayed(bounce, []int{1}, "x[192.0.2.1]:25", reply250, nil)
	f.n.Delivered(env, []int{2}, "x[192.0.2.1]:25", reply250, nil)
	if n := len(f.put.all()); n != 1 {
		t.Errorf("%d reports, want still 1", n)
	}
	f.n.Delivered(env, []int{1}, "mail.legacy.example[203.0.113.10]:25", reply250, nil)
	puts = f.put.all()
	if len(puts) != 2 {
		t.Fatalf("%d reports after Delivered, want 2", len(puts))
	}
	if _, actions := reportRcpts(t, puts[1]); actions[0] != "delivered" {
		t.Errorf("Action = %v", actions)
	}
}

func TestNotifierSMTPUTF8(t *testing.T) {
	f := newFixture(t, "")
	c := goldenCases()[7] // failed_smtputf8
	if c.name != "failed_smtputf8" {
		t.Fatalf("case order changed: %s", c.name)
	}
	env := c.report.Env
	ev := queue.Event{Kind: queue.EventFinished, ID: env.ID, Env: env, Body: bodyOf(c.original),
		Rcpts: []queue.RcptStatus{{Index: 0, Addr: env.Rcpts[0].Addr, State: queue.Failed, LastReply: c.report.Rcpts[0].Reply}}}
	f.n.OnEvent(ev)
	puts := f.put.all()
	if len(puts) != 1 {
		t.Fatalf("%d reports", len(puts))
	}
	if !puts[0].env.SMTPUTF8 || puts[0].env.Body != smtp.Body8BitMIME {
		t.Errorf("report envelope SMTPUTF8=%v BODY=%s, want SMTPUTF8 and 8BITMIME", puts[0].env.SMTPUTF8, puts[0].env.Body)
	}
	// A plain report needs neither.
	f.n.OnEvent(finishedEvent(baseEnv(), queue.Failed, queue.Sent, queue.Sent))
	puts = f.put.all()
	if puts[1].env.SMTPUTF8 || puts[1].env.Body != "" {
		t.Errorf("plain report envelope SMTPUTF8=%v BODY=%s", puts[1].env.SMTPUTF8, puts[1].env.Body)
	}
}

func TestNewNotifierErrors(t *testing.T) {
	put := (&fakePut{}).put
	if _, err := NewNotifier(NotifierConfig{ReportingMTA: "relay.example.com"}, nil); err == nil {
		t.Error("no error without a PutFunc")
	}
	if _, err := NewNotifier(NotifierConfig{ReportingMTA: "bad name"}, put); err == nil {
		t.Error("no error for a bad reporting MTA")
	}
	if _, err := NewNotifier(NotifierConfig{ReportingMTA: "relay.example.com", Postmaster: "not an address"}, put); err == nil {
		t.Error("no error for a bad postmaster")
	}
}
