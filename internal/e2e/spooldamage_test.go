package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ferrymta/ferry/internal/testrelay"
)

// TestDamagedSpoolRecovered: six messages are queued for a hop that is
// down; with ferry stopped, the header of the third message's record is
// overwritten with twelve zero octets. The restarted relay delivers the
// other five (the three after the damage too), logs the damage with the
// third one's queue ID, and keeps the damaged segment in spool/corrupt/.
func TestDamagedSpoolRecovered(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	r1 := startRelay(t, shortRetry, "", routeAll(addr))
	c := testrelay.Dial(t, r1.Addr)
	var ids []string
	for i := range 6 {
		ids = append(ids, c.SendID(sender, []string{"user@example.com"}, "", numbered([]byte("Subject: damage\r\n\r\nqueued\r\n"), i)))
	}
	c.Quit()
	r1.Stop(t)

	segs, err := filepath.Glob(filepath.Join(r1.spool, "seg-*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment in %s (%v)", r1.spool, err)
	}
	var damaged string
	var original []byte
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		// The first occurrence of an ID is its message record's ID field,
		// after the 12-octet header and the ID's length octet.
		if i := bytes.Index(b, []byte(ids[2])); i >= 13 {
			clear(b[i-13 : i-1])
			if err := os.WriteFile(seg, b, 0o600); err != nil {
				t.Fatal(err)
			}
			damaged, original = seg, b
			break
		}
	}
	if damaged == "" {
		t.Fatalf("message %s not found in the segments", ids[2])
	}

	h := startSink(t, addr)
	r2 := startRelay(t, shortRetry, r1.spool, routeAll(addr))
	h.waitCaptures(t, 5)
	got := map[string]bool{}
	for _, cp := range h.captures(t) {
		got[seqOf(cp.data)] = true
	}
	for i, id := range ids {
		if want := i != 2; got[seqOf(numbered([]byte("Subject: damage\r\n\r\nqueued\r\n"), i))] != want {
			t.Errorf("message %d (%s) delivered: %v, want %v", i, id, !want, want)
		}
	}
	line := r2.WaitLog(t, "corrupt record skipped")
	if !strings.Contains(line, ids[2]) {
		t.Errorf("damage logged without the damaged message's ID %s: %s", ids[2], line)
	}
	kept, err := os.ReadFile(filepath.Join(r1.spool, "corrupt", filepath.Base(damaged)))
	if err != nil || !bytes.Equal(kept, original) {
		t.Errorf("damaged segment not kept as found in spool/corrupt (err %v)", err)
	}
}

// TestSizeOverFreeSpaceRefusedAtMail: with the spool on a small file system
// (a 4 MiB tmpfs holding 1 MiB segments), MAIL with a SIZE= that cannot
// fit whether or not the next segment is already preallocated (3.5 MB:
// more than the 3 MiB left beside the active segment) gets 452 4.3.1
// before any content is sent, and a small one is
// accepted and stored.
func TestSizeOverFreeSpaceRefusedAtMail(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a small tmpfs for the spool (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	h := startSink(t, "127.0.0.1:0")
	r := startRelay(t, "[queue]\nsegment_size = \"1MiB\"\n", filepath.Join(dir, "spool"), routeAll(h.Addr))
	c := testrelay.Dial(t, r.Addr)
	rep := c.Cmd("MAIL FROM:<%s> SIZE=3500000", sender)
	if rep.Code != 452 || !strings.HasPrefix(rep.Text(), "4.3.1") {
		t.Errorf("MAIL with SIZE=3500000 on a 4 MiB spool: %v, want 452 4.3.1", rep)
	}
	c.SendID(sender, []string{"user@example.com"}, "SIZE=100", []byte("Subject: small\r\n\r\nfits\r\n"))
	c.Quit()
	h.waitCaptures(t, 1)
}
