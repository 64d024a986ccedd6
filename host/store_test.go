package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/apdu/epurse"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "odd?name#1.db") // the DSN must escape these
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var v, syncMode int
	var mode string
	st.db.QueryRow(`PRAGMA user_version`).Scan(&v)
	st.db.QueryRow(`PRAGMA synchronous`).Scan(&syncMode)
	st.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if v != schemaVersion || syncMode != 2 || mode != "wal" {
		t.Fatalf("user_version %d, synchronous %d, journal_mode %s", v, syncMode, mode)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the database is not at %s: %v", path, err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	// Opening again is a no-op migration.
	st, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	// A readable database is refused, and so is a newer schema.
	os.Chmod(path, 0o644)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 database: %v", err)
	}
	os.Chmod(path, 0o600)
	st, _ = Open(path)
	st.db.Exec(`PRAGMA user_version = 99`)
	st.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("a newer schema: %v", err)
	}
}

func TestKeysFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, MastersFile)
	m, err := GenerateMasterKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteMasterKeys(path, m); err != nil {
		t.Fatal(err)
	}
	if err := WriteMasterKeys(path, m); err == nil {
		t.Fatal("master keys were overwritten")
	}
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.m != m {
		t.Fatal("keys read back differ")
	}
	b, _ := os.ReadFile(path)
	for _, s := range []string{k.String(), k.LogValue().String()} {
		if strings.Contains(string(b), s) || s != "[redacted]" {
			t.Fatalf("keys print as %q", s)
		}
	}
	os.Chmod(path, 0o640)
	if _, err := LoadKeys(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a group-readable key file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"dlk": "00112233445566778899AABBCCDDEEFF", "dpk": "00112233445566778899AABBCCDDEEFF", "dtk": "00112233445566778899AABBCCDDEEFF", "dlx": ""}`), 0o600)
	if _, err := LoadKeys(bad); err == nil || strings.Contains(err.Error(), "0011223344") {
		t.Fatalf("unknown field: %v", err)
	}
	if _, err := NewKeys(epurse.MasterKeys{}); err == nil {
		t.Fatal("zero keys accepted")
	}
}

func TestInitDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "host")
	if err := InitDir(dir, ""); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{".": 0o700, DBFile: 0o600, MastersFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want mode %04o", name, fi, err, want)
		}
	}
	if err := InitDir(dir, ""); err == nil {
		t.Fatal("init overwrote the master keys")
	}
	// Keys gone beside issued cards: refused, not replaced.
	st, err := OpenDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := LoadDirKeys(dir)
	if _, err := st.IssueCard(context.Background(), k, IssueRequest{Number: testNumber}, filepath.Join(dir, "c.json"), "test", nowForTest()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	os.Remove(filepath.Join(dir, MastersFile))
	if err := InitDir(dir, ""); err == nil || !strings.Contains(err.Error(), "1 cards") {
		t.Fatalf("new keys beside issued cards: %v", err)
	}
	if _, err := OpenDir(t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "cardhost init") {
		t.Fatalf("an empty directory: %v", err)
	}
}
