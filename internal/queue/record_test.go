package queue

import (
	"reflect"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

func TestStateRecordRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	tests := []stateRec{
		{Rcpt: 0, State: Sent, Attempts: 1, At: at, RemoteMTA: "mx.example[192.0.2.1]:25", Reply: smtp.NewReply(250, "2.0.0", "Ok")},
		{Rcpt: 7, State: Deferred, Attempts: 3, At: at, Next: at.Add(time.Hour), Reply: smtp.NewReply(451, "4.7.1", "Try again", "later")},
		{Rcpt: 65535, State: Failed, Attempts: 9, At: at, Expired: true, Reply: smtp.NewReply(451, "4.4.7", "Message expired")},
		{Rcpt: 1, State: Failed},
	}
	for _, want := range tests {
		b := encodeState("ABCDEF", want)
		if !checkCRC(b) {
			t.Fatalf("CRC of fresh record does not check")
		}
		r, err := decodeRecord(b)
		if err != nil || r.typ != recState || r.id != "ABCDEF" {
			t.Fatalf("decodeRecord = %+v, %v", r, err)
		}
		got, err := decodeState(r.rest)
		if err != nil {
			t.Fatalf("decodeState: %v", err)
		}
		if !got.At.Equal(want.At) || !got.Next.Equal(want.Next) {
			t.Errorf("times: got %v/%v want %v/%v", got.At, got.Next, want.At, want.Next)
		}
		got.At, got.Next, want.At, want.Next = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("state round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	env := &smtp.Envelope{
		ID: "0ABC", From: smtp.Path{LocalPart: "a \"b\"", Domain: "bücher.example"}, Body: smtp.BodyBinaryMIME,
		SMTPUTF8: true, RequireTLS: true, TLSOptional: true, Size: 12345, Ret: smtp.ReturnHeaders, EnvID: "env-1", Auth: "<>",
		Rcpts: []smtp.Recipient{
			{Addr: smtp.Path{LocalPart: "x", Domain: "Example.COM"}, Notify: smtp.NotifySuccess | smtp.NotifyDelay, ORcpt: "rfc822;x@example.com"},
			{Addr: smtp.Path{LocalPart: "postmaster"}},
		},
		Client:  smtp.ClientInfo{Addr: "[2001:db8::1]:25", Helo: "h", User: "u", TLS: true, Protocol: "ESMTPSA"},
		Arrival: time.Unix(1700000000, 42),
	}
	got, err := decodeEnvelope("0ABC", encodeEnvelope(nil, env))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Arrival.Equal(env.Arrival) {
		t.Errorf("arrival %v want %v", got.Arrival, env.Arrival)
	}
	got.Arrival = env.Arrival
	if !reflect.DeepEqual(got, env) {
		t.Errorf("envelope round trip:\n got %+v\nwant %+v", got, env)
	}
	// Every truncation is an error, never a panic.
	e := encodeEnvelope(nil, env)
	for i := range len(e) {
		if _, err := decodeEnvelope("x", e[:i]); err == nil {
			t.Errorf("truncated envelope at %d decoded without error", i)
		}
	}
}

func TestCRCDetectsEveryFlippedByte(t *testing.T) {
	env := testEnv("a@example.org", "b@example.net")
	env.ID = "ID1"
	rec, _ := messagePrefix(nil, env)
	rec = append(rec, "Subject: x\r\n\r\nbody\r\n"...)
	sealRecord(rec)
	for i := range rec {
		b := append([]byte(nil), rec...)
		b[i] ^= 0x20
		if _, _, ok := parseHeader(b); ok && checkCRC(b) {
			t.Errorf("flipping byte %d went undetected", i)
		}
	}
}

func TestParseHeaderRejects(t *testing.T) {
	tests := []struct {
		name string
		h    []byte
	}{
		{"zero", make([]byte, headerSize)},
		{"unknown type", []byte{99, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0}},
		{"empty payload", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"huge payload", []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		if _, _, ok := parseHeader(tt.h); ok {
			t.Errorf("%s: header accepted", tt.name)
		}
	}
}

func TestNewIDSortableUnique(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	q := mustOpen(t, testConfig(dir, clock, nil))
	defer q.Close()
	prev := ""
	seen := map[string]bool{}
	for i := range 40000 { // more than the 14-bit counter per millisecond
		if i%1000 == 0 {
			clock.Add(time.Millisecond)
		}
		id := q.NewID()
		if len(id) != 13 || id <= prev || seen[id] {
			t.Fatalf("ID %d %q after %q: not longer-sorting or repeated", i, id, prev)
		}
		seen[id] = true
		prev = id
	}
}
