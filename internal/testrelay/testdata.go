package testrelay

import (
	"os"
	"path/filepath"
	"testing"
)

// ReadTestdata returns the content of testdata/name in the test's package
// directory, failing the test if it cannot be read.
func ReadTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
