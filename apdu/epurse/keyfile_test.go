package epurse

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// TestMasterKeyFileMaintenanceKey: the maintenance master (damk) is kept
// and read back; a key file written before it existed (dlk, dpk, dtk only)
// still reads, with no DAMK, and one without a DAMK is written as before.
func TestMasterKeyFileMaintenanceKey(t *testing.T) {
	dir := t.TempDir()
	with := keyFileMasters
	with.DAMK = Key16{0xA, 0xB}
	path := filepath.Join(dir, "with.json")
	if err := WriteMasterKeyFile(path, with); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadMasterKeyFile(path); err != nil || got != with {
		t.Fatalf("read back %v, %v", got, err)
	}

	old := filepath.Join(dir, "old.json")
	body := `{"dlk": "01020300000000000000000000000000", "dpk": "04050600000000000000000000000000", "dtk": "07080900000000000000000000000000"}`
	if err := os.WriteFile(old, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMasterKeyFile(old)
	if err != nil || got != keyFileMasters || got.DAMK != (Key16{}) {
		t.Fatalf("an old key file reads %v, %v; want its three keys and no DAMK", got, err)
	}
	without := filepath.Join(dir, "without.json")
	if err := WriteMasterKeyFile(without, keyFileMasters); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(without); strings.Contains(string(b), "damk") {
		t.Errorf("a key file without a DAMK names one:\n%s", b)
	}
	// Diversified, the DAMK is a card key like the others; none from none.
	serial := make([]byte, 10)
	if k := with.Diversify(serial); k.DAMK != DiversifyKey(with.DAMK, serial) {
		t.Error("the card's DAMK is not diversified from the master")
	}
	if k := keyFileMasters.Diversify(serial); k.DAMK != (Key16{}) {
		t.Error("masters without a DAMK gave the card one")
	}
}
