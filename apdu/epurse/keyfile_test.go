package epurse

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

var keyFileMasters = MasterKeys{DLK: Key16{1, 2, 3}, DPK: Key16{4, 5, 6}, DTK: Key16{7, 8, 9}}

func TestWriteMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "masters.json")
	if err := WriteMasterKeyFile(path, keyFileMasters); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMasterKeyFile(path)
	if err != nil || got != keyFileMasters {
		t.Fatalf("read back %v, %v", got, err)
	}
	// A second write must not replace the keys the cards were made with.
	other := MasterKeys{DLK: Key16{9}}
	if err := WriteMasterKeyFile(path, other); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("writing over an existing key file: %v, want fs.ErrExist", err)
	}
	if got, err := ReadMasterKeyFile(path); err != nil || got != keyFileMasters {
		t.Fatalf("after the refused write: %v, %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the directory, want the key file only", len(ents))
	}
}

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
