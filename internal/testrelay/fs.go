package testrelay

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// MountTmpfs mounts a tmpfs of size (as mount(8) takes it, e.g. "4m") on a
// new temporary directory and returns it, for tests that need a small real
// file system to fill. It skips the test when it cannot mount (not root, or
// no permission in a container). The tmpfs is unmounted when the test ends,
// after the cleanups registered later (processes using it) have run.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skipf("needs root to mount a %s tmpfs", size)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a %s tmpfs (%v: %s)", size, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// FillDisk writes the file path until the file system holding it is full
// (ENOSPC) and returns the file's size.
func FillDisk(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	var n int64
	for range 1 << 20 {
		k, err := f.Write(buf)
		n += int64(k)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return n
		}
	}
	t.Fatal("the file system never filled")
	return n
}
