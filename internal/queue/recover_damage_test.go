package queue

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// damageSpool is one segment of six acknowledged messages, with the
// offset of every message record and the end of the records.
type damageSpool struct {
	seg  []byte
	offs []int64 // offs[i] is where message i's record starts; offs[6] the end
	ids  []string
}

const damageMsgs = 6

func newDamageSpool(t *testing.T) damageSpool {
	t.Helper()
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, nil, nil))
	var d damageSpool
	for i := range damageMsgs {
		id := putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(i, 400))
		d.ids = append(d.ids, id)
		d.offs = append(d.offs, q.msgs[id].base.off)
	}
	d.offs = append(d.offs, q.active.end)
	path := q.active.path
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d.seg = b[:d.offs[damageMsgs]]
	return d
}

func zeroRange(b []byte, from, to int64) []byte {
	clear(b[from:to])
	return b
}

func cutRange(b []byte, from, to int64) []byte {
	return append(b[:from:from], b[to:]...)
}

// TestRecoveryPastDamage damages one segment in each way a disk or an
// operator can (zeroed, flipped and removed octets at a header, in a body,
// across records and at the tail) and checks that every message outside
// the damage is recovered, the damage is logged with the queue IDs that
// can still be read, and a damaged segment is kept in spool/corrupt/.
func TestRecoveryPastDamage(t *testing.T) {
	d := newDamageSpool(t)
	o := d.offs
	tail := int64(damageMsgs - 1)
	cases := []struct {
		name   string
		damage func([]byte) []byte
		lost   []int
		named  []int // IDs the log must name
		kept   bool  // segment preserved in spool/corrupt/
	}{
		{"zeroed header", func(b []byte) []byte { return zeroRange(b, o[2], o[2]+headerSize) }, []int{2}, []int{2}, true},
		{"zeroed header and ID", func(b []byte) []byte { return zeroRange(b, o[2], o[2]+40) }, []int{2}, nil, true},
		{"zeroed body", func(b []byte) []byte { return zeroRange(b, o[2]+100, o[2]+160) }, []int{2}, []int{2}, true},
		{"zeroed across records", func(b []byte) []byte { return zeroRange(b, o[2]+100, o[3]+60) }, []int{2, 3}, []int{2}, true},
		{"zeroed whole records", func(b []byte) []byte { return zeroRange(b, o[2], o[4]) }, []int{2, 3}, nil, true},
		{"flipped type", func(b []byte) []byte { b[o[2]] ^= 0xff; return b }, []int{2}, []int{2}, true},
		{"flipped length", func(b []byte) []byte { b[o[2]+5] ^= 0x40; return b }, []int{2}, []int{2}, true},
		{"flipped CRC", func(b []byte) []byte { b[o[2]+9] ^= 0x01; return b }, []int{2}, []int{2}, true},
		{"flipped body", func(b []byte) []byte { b[o[2]+200] ^= 0x01; return b }, []int{2}, []int{2}, true},
		{"removed header octets", func(b []byte) []byte { return cutRange(b, o[2], o[2]+6) }, []int{2}, nil, true},
		{"removed body octets", func(b []byte) []byte { return cutRange(b, o[2]+120, o[2]+150) }, []int{2}, []int{2}, true},
		{"removed across records", func(b []byte) []byte { return cutRange(b, o[2]+120, o[3]+5) }, []int{2, 3}, []int{2}, true},
		// The last record damaged is a torn tail of the newest segment:
		// cut off, with what it names logged.
		{"zeroed tail", func(b []byte) []byte { return zeroRange(b, o[tail]+100, o[tail+1]) }, []int{5}, []int{5}, false},
		{"flipped tail", func(b []byte) []byte { b[o[tail]+150] ^= 0x08; return b }, []int{5}, []int{5}, false},
		{"truncated tail", func(b []byte) []byte { return b[:o[tail]+30] }, []int{5}, []int{5}, false},
		{"truncated in a header", func(b []byte) []byte { return b[:o[tail]+7] }, []int{5}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := tc.damage(bytes.Clone(d.seg))
			data = append(data, make([]byte, 8192)...) // preallocated space after the records
			segPath := filepath.Join(dir, segName(1))
			if err := os.WriteFile(segPath, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			cfg := testConfig(dir, nil, &logs)
			q, err := openWith(cfg, osLayer{noSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { q.Close() }()
			for i, id := range d.ids {
				if slices.Contains(tc.lost, i) {
					if _, err := q.Show(id); !errors.Is(err, ErrNotFound) {
						t.Errorf("damaged message %d present (err %v)", i, err)
					}
					continue
				}
				if got := readBodyOf(t, q, id); !bytes.Equal(got, bodyFor(i, 400)) {
					t.Errorf("message %d damaged after recovery", i)
				}
			}
			log := logs.String()
			for _, i := range tc.named {
				if !strings.Contains(log, d.ids[i]) {
					t.Errorf("log does not name damaged message %d (%s):\n%s", i, d.ids[i], log)
				}
			}
			kept := filepath.Join(dir, corruptDir, segName(1))
			got, err := os.ReadFile(kept)
			if !tc.kept {
				if err == nil {
					t.Errorf("torn tail of the newest segment: whole segment kept in %s", kept)
				}
				if !strings.Contains(log, "tail cut off") {
					t.Errorf("tail cut not logged:\n%s", log)
				}
				// The octets cut off are kept: from the torn record to the
				// last non-zero octet.
				tails, _ := filepath.Glob(filepath.Join(dir, corruptDir, segName(1)+".tail-*"))
				if len(tails) != 1 {
					t.Fatalf("kept tails %v, want one", tails)
				}
				b, _ := os.ReadFile(tails[0])
				start := bytes.TrimRight(data, "\x00")
				if len(b) == 0 || !bytes.HasSuffix(start, b) {
					t.Errorf("kept tail of %d octets is not the end of the damaged segment", len(b))
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("damaged segment not kept as it was in %s (err %v)", kept, err)
			}
			if !strings.Contains(log, "corrupt record skipped") || !strings.Contains(log, "damaged segment kept") {
				t.Errorf("damage not logged:\n%s", log)
			}
			// Once every recovered message is done, the spool lets the
			// segment go; the kept copy stays.
			for i, id := range d.ids {
				if !slices.Contains(tc.lost, i) {
					if err := q.Delete(context.Background(), id); err != nil {
						t.Fatal(err)
					}
				}
			}
			if removed, _ := q.gcStep(); removed != 1 {
				t.Fatalf("gcStep removed %d segments, want the damaged one", removed)
			}
			if got, err := os.ReadFile(kept); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("kept segment gone after collection (err %v)", err)
			}
		})
	}
}

// TestRecoveryKeepsDamagedSegmentUnchanged reopens a spool twice: the
// damaged segment is neither cut nor copied again, and the same messages
// come back.
func TestRecoveryKeepsDamagedSegmentUnchanged(t *testing.T) {
	d := newDamageSpool(t)
	dir := t.TempDir()
	data := zeroRange(bytes.Clone(d.seg), d.offs[1], d.offs[1]+headerSize)
	if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir, nil, nil)
	for range 2 {
		q, err := openWith(cfg, osLayer{noSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(q.msgs); n != damageMsgs-1 {
			t.Errorf("recovered %d messages, want %d", n, damageMsgs-1)
		}
		q.Close()
	}
	if got, _ := os.ReadFile(filepath.Join(dir, segName(1))); !bytes.Equal(got, data) {
		t.Error("damaged segment changed by recovery")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, corruptDir))
	if len(ents) != 1 {
		t.Errorf("spool/corrupt holds %d files, want 1", len(ents))
	}
}

// TestRecoveryDamagedTailOfOlderSegment: only the newest segment can have
// a torn write; damage at the end of an older one is kept, not cut.
func TestRecoveryDamagedTailOfOlderSegment(t *testing.T) {
	d := newDamageSpool(t)
	dir := t.TempDir()
	last := d.offs[damageMsgs-1]
	data := bytes.Clone(d.seg[:last+50])
	if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segName(2)), d.seg[:d.offs[1]], 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	q, err := openWith(testConfig(dir, nil, &logs), osLayer{noSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if got, err := os.ReadFile(filepath.Join(dir, corruptDir, segName(1))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("older segment with a damaged tail not kept (err %v)", err)
	}
	if !strings.Contains(logs.String(), "damaged tail left in place") || !strings.Contains(logs.String(), d.ids[damageMsgs-1]) {
		t.Errorf("damaged tail not logged with its ID:\n%s", logs.String())
	}
}

// TestRecoveryNamesMessagesLostToDamage: a hold record names a message
// whose message record was destroyed; recovery reports it as lost.
func TestRecoveryNamesMessagesLostToDamage(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, testConfig(dir, nil, nil))
	var ids []string
	for i := range 3 {
		ids = append(ids, putBody(t, q, testEnv("s@example.org", "r@example.net"), bodyFor(i, 300)))
	}
	if err := q.Hold(context.Background(), ids[1]); err != nil {
		t.Fatal(err)
	}
	off, path := q.msgs[ids[1]].base.off, q.active.path
	q.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[off : off+60]) // header and ID gone: nothing in the range names it
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	q, err = openWith(testConfig(dir, nil, &logs), osLayer{noSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if !strings.Contains(logs.String(), "messages lost to damage") || !strings.Contains(logs.String(), ids[1]) {
		t.Errorf("lost message not named:\n%s", logs.String())
	}
}
