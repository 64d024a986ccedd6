package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the plain "sqlite3" driver, to make stores of other schema versions

	"github.com/cardd/cardd/offline"
)

// fileState is what `journal pending` must leave as it was: the store's
// bytes and mtime, and the names in its directory (no -wal or -shm left).
func fileState(t *testing.T, path string) string {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return fi.ModTime().Format(time.RFC3339Nano) + " " + fi.Mode().String() + " " + strings.Join(names, ",") + " " + string(body)
}

// TestJournalPending counts what the host does not hold: of two reads one
// acknowledged, and an acknowledged load whose completion is still owed
// (which counting unacknowledged rows alone missed); --verbose says which.
// The store is read, not written, and a missing store is 0 and not created.
func TestJournalPending(t *testing.T) {
	t.Setenv("CARDD_CONFIG", "")
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cardd.db")
	st, err := offline.Open(path, "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	load, err := st.Begin(ctx, offline.Row{Kind: offline.KindLoad, Card: "3101000000123456", Purse: "EP", Counter: 5,
		BalanceFen: 1000, AmountFen: 5000, CreditID: "c1", MAC2: "11223344", Time: "20250102030405"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx, load.ID, offline.StateDone, "0A0B0C0D", ""); err != nil {
		t.Fatal(err)
	}
	for _, card := range []string{"3101000000123456", "3101000000654321"} {
		if _, err := st.Begin(ctx, offline.Row{Kind: offline.KindRead, Card: card}); err != nil {
			t.Fatal(err)
		}
	}
	sent, err := st.Unacked(ctx, 2)
	if err != nil || len(sent) != 2 {
		t.Fatalf("Unacked = %v, %v", sent, err)
	}
	if err := st.Ack(ctx, []string{sent[0].ID, sent[1].ID}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileState(t, path)

	code, out, stderr := run(t, "journal", "pending", "--store", path)
	if code != 0 || out != "2\n" || stderr != "" {
		t.Errorf("journal pending = exit %d, %q (stderr %q), want 0, \"2\\n\" (a row and a completion)", code, out, stderr)
	}
	code, out, stderr = run(t, "journal", "pending", "--store", path, "--verbose")
	if want := path + ": rows 1, completions 1, voids 0, shifts 0\n"; code != 0 || out != "2\n" || stderr != want {
		t.Errorf("journal pending --verbose = exit %d, %q, stderr %q; want 0, \"2\\n\", %q", code, out, stderr, want)
	}
	if fileState(t, path) != before {
		t.Error("journal pending changed the store or its directory")
	}

	missing := filepath.Join(t.TempDir(), "none.db")
	code, out, stderr = run(t, "journal", "pending", "--store", missing)
	if code != 0 || out != "0\n" {
		t.Errorf("journal pending of a missing store = exit %d, %q (stderr %q), want 0, \"0\\n\"", code, out, stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("journal pending created %s: %v", missing, err)
	}

	for _, args := range [][]string{{"journal"}, {"journal", "list"}, {"journal", "pending", "extra"},
		{"journal", "pending", "--timeout", "0s"}} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("cardd %v: exit %d, want 2", args, code)
		}
	}
}

// makeStore writes a bare SQLite file at path with the statements given,
// without offline.Open (which would migrate it to this cardd's schema).
func makeStore(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A store of an older schema is counted as it is, not migrated (the older
// cardd reinstalled after a removal must still open it); one of a newer
// schema is refused with exit 1, which makes the package keep it.
func TestJournalPendingSchemaVersions(t *testing.T) {
	t.Setenv("CARDD_CONFIG", "")
	dir := t.TempDir()
	old := filepath.Join(dir, "old.db")
	makeStore(t, old,
		`CREATE TABLE journal (kind TEXT, state TEXT, purse TEXT, credit_id TEXT, tac TEXT, proof TEXT,
			completion_reported INTEGER, rev INTEGER, acked_rev INTEGER)`,
		`INSERT INTO journal VALUES ('read', 'done', '', '', '', '', 0, 1, 0)`,
		`PRAGMA user_version = 1`)
	before := fileState(t, old)
	code, out, stderr := run(t, "journal", "pending", "--store", old)
	if code != 0 || out != "1\n" {
		t.Errorf("journal pending of a version 1 store = exit %d, %q (stderr %q), want 0, \"1\\n\"", code, out, stderr)
	}
	if fileState(t, old) != before {
		t.Error("journal pending changed the version 1 store (migrated it?)")
	}

	newer := filepath.Join(dir, "newer.db")
	makeStore(t, newer, `CREATE TABLE journal (x)`, "PRAGMA user_version = 9999")
	code, out, stderr = run(t, "journal", "pending", "--store", newer)
	if code != 1 || out != "" || !strings.Contains(stderr, "9999") {
		t.Errorf("journal pending of a newer store = exit %d, %q (stderr %q), want 1, nothing, an error naming version 9999", code, out, stderr)
	}
}

// The wait for a lock is bounded by --timeout: a store another process
// holds exclusively (as a migration or a crash recovery would) makes the
// command fail rather than hang, and the failure keeps the journal.
func TestJournalPendingTimeout(t *testing.T) {
	t.Setenv("CARDD_CONFIG", "")
	path := filepath.Join(t.TempDir(), "cardd.db")
	makeStore(t, path, `CREATE TABLE journal (x)`)
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal=DELETE&_locking_mode=EXCLUSIVE")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`INSERT INTO journal VALUES (1)`); err != nil { // takes the exclusive lock and keeps it
		t.Fatal(err)
	}
	code, out, stderr := run(t, "journal", "pending", "--store", path, "--timeout", "200ms")
	if code != 1 || out != "" || !bytes.Contains([]byte(stderr), []byte("locked")) {
		t.Errorf("journal pending of a locked store = exit %d, %q (stderr %q), want 1 and a lock error", code, out, stderr)
	}
}
