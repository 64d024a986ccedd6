//go:build unix

package epurse

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The file size limit (RLIMIT_FSIZE) this test cuts the write short with is
// Unix's; Windows has none to set.

// TestWriteMasterKeyFileFailedWrite makes the write itself fail part way
// (the file size limit stands in for a full disk): the error must reach the
// caller and no cut-short key file may be left.
func TestWriteMasterKeyFileFailedWrite(t *testing.T) {
	// Not parallel: the limit is the whole process's.
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "masters.json")
	limit := old
	limit.Cur = 16 // bytes: the JSON is about 150
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
	}
	err := WriteMasterKeyFile(path, keyFileMasters)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("a write cut short at 16 bytes reported success; the key file holds %d bytes", len(b))
	}
	if !errors.Is(err, syscall.EFBIG) {
		t.Errorf("error %v, want EFBIG", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("%d files left after a failed write, want none", len(ents))
	}
}
