package queue

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary octets (with the length and CRC made
// consistent) to the record, state and envelope decoders: they may reject
// input but never panic, and what they accept encodes and decodes back to
// the same value.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeState("ID1", stateRec{Rcpt: 1, State: Deferred, Attempts: 2}))
	f.Add(encodeSimple(recDone, "ID2", doneDeleted))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) <= headerSize {
			return
		}
		raw := append([]byte(nil), b...)
		if _, _, ok := parseHeader(raw); ok && !checkCRC(raw) {
			raw = withCRC(raw)
		}
		r, err := decodeRecord(raw)
		if err != nil {
			return
		}
		switch r.typ {
		case recState:
			s, err := decodeState(r.rest)
			if err != nil {
				return
			}
			r2, err := decodeRecord(encodeState(r.id, s))
			if err != nil {
				t.Fatalf("re-encoded state record: %v", err)
			}
			s2, err := decodeState(r2.rest)
			if err != nil || !reflect.DeepEqual(s, s2) {
				t.Fatalf("state does not round-trip: %+v -> %+v (%v)", s, s2, err)
			}
		case recMessage:
			e, _, err := splitMessage(r.rest)
			if err != nil {
				return
			}
			env, err := decodeEnvelope(r.id, e)
			if err != nil {
				return
			}
			env2, err := decodeEnvelope(r.id, encodeEnvelope(nil, env))
			if err != nil || !reflect.DeepEqual(env, env2) {
				t.Fatalf("envelope does not round-trip: %+v -> %+v (%v)", env, env2, err)
			}
		}
	})
}

// withCRC returns a copy of b with a consistent length and CRC.
func withCRC(b []byte) []byte {
	c := append([]byte(nil), b...)
	if len(c) > headerSize {
		sealRecord(c)
	}
	return c
}

// FuzzRecover opens a spool whose only segment holds arbitrary octets:
// recovery must never fail or panic, and must leave a spool that opens
// again with the same messages.
func FuzzRecover(f *testing.F) {
	f.Add(encodeSimple(recHold, "X"))
	f.Add(encodeSimple(recReported, "X", []byte("delay:4h0m0s")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(dir, nil, nil)
		cfg.SegmentSize = 4 << 10
		q, err := openWith(cfg, osLayer{noSync: true})
		if err != nil {
			t.Fatalf("recovery failed: %v", err)
		}
		n := len(q.msgs)
		q.Close()
		q, err = openWith(cfg, osLayer{noSync: true})
		if err != nil {
			t.Fatalf("second recovery failed: %v", err)
		}
		defer q.Close()
		if len(q.msgs) != n {
			t.Fatalf("%d messages, then %d", n, len(q.msgs))
		}
	})
}
