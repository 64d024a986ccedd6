package offline

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ackAll sends every unacknowledged row and has the host acknowledge it.
func ackAll(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.Unacked(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, ids(rows)); err != nil {
		t.Fatal(err)
	}
}

func mustOwe(t *testing.T, s *Store, want Owed) {
	t.Helper()
	got, err := s.Owed(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Owed = %v (total %d), want %v (total %d)", got, got.Total(), want, want.Total())
	}
}

// A load the host acknowledged still owes its completion: reporting it
// does not touch rev, so counting acked_rev < rev alone says 0 while the
// card's TAC exists only here.
func TestOwedCompletionOfAckedLoad(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := mustBegin(t, s, loadRow(cardA, "c1"))
	if err := s.Finish(ctx, r.ID, StateDone, "0A0B0C0D", ""); err != nil {
		t.Fatal(err)
	}
	ackAll(t, s)
	mustOwe(t, s, Owed{Completions: 1})
	if err := s.MarkCompletionReported(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	mustOwe(t, s, Owed{})
}

// A void (a refund the host must make) is owed until the host answers it,
// even when every journal row is acknowledged.
func TestOwedVoid(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	doneSale(t, s, 1250)
	v, err := s.RecordVoid(ctx, VoidRequest{Window: time.Minute, Cashier: "c7"})
	if err != nil {
		t.Fatal(err)
	}
	ackAll(t, s)
	mustOwe(t, s, Owed{Voids: 1})
	if err := s.VoidRefunded(ctx, v.ID, "R1"); err != nil {
		t.Fatal(err)
	}
	mustOwe(t, s, Owed{})
}

// A closed shift is owed until the host acknowledges it; an open one is not
// yet anything to send.
func TestOwedClosedShift(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	sh, err := s.OpenShift(ctx, "C007")
	if err != nil {
		t.Fatal(err)
	}
	mustOwe(t, s, Owed{})
	if _, err := s.CloseShift(ctx, CloseOptions{}); err != nil {
		t.Fatal(err)
	}
	mustOwe(t, s, Owed{Shifts: 1})
	if err := s.ShiftUploaded(ctx, sh.ID); err != nil {
		t.Fatal(err)
	}
	mustOwe(t, s, Owed{})
}

// snapshot is what a read-only open must leave as it was: the store's
// bytes and mtime, and which of its siblings exist.
type snapshot struct {
	body     []byte
	mtime    time.Time
	mode     fs.FileMode
	siblings string
}

func snap(t *testing.T, path string) snapshot {
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
	return snapshot{body, fi.ModTime(), fi.Mode(), strings.Join(names, " ")}
}

func (a snapshot) check(t *testing.T, b snapshot) {
	t.Helper()
	if !bytes.Equal(a.body, b.body) {
		t.Error("the store's bytes changed")
	}
	if !a.mtime.Equal(b.mtime) {
		t.Errorf("the store's mtime changed: %v -> %v", a.mtime, b.mtime)
	}
	if a.mode != b.mode {
		t.Errorf("the store's mode changed: %v -> %v", a.mode, b.mode)
	}
	if a.siblings != b.siblings {
		t.Errorf("the directory changed: %q -> %q", a.siblings, b.siblings)
	}
}

// A closed store (WAL mode, its -wal and -shm gone with the last
// connection) is read without a change to its file or directory, and a
// write through the read-only store fails.
func TestOpenReadOnlyLeavesStore(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	r := mustBegin(t, s, loadRow(cardA, "c1"))
	if err := s.Finish(ctx, r.ID, StateDone, "0A0B0C0D", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil { // Open would make it 0600
		t.Fatal(err)
	}
	before := snap(t, path)
	ro, err := OpenReadOnly(ctx, path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mustOwe(t, ro, Owed{Rows: 1, Completions: 1})
	if _, err := ro.Begin(ctx, Row{Kind: KindRead, Card: cardA}); err == nil {
		t.Error("a row was written through the read-only store")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	before.check(t, snap(t, path))
}

// With the daemon's store open (its -wal holding commits not checkpointed)
// the read-only store sees them, and the -wal is left as it was.
func TestOpenReadOnlyBesideWriter(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	mustBegin(t, s, Row{Kind: KindRead, Card: cardA})
	ro, err := OpenReadOnly(ctx, path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	mustOwe(t, ro, Owed{Rows: 1})
	mustBegin(t, s, Row{Kind: KindRead, Card: cardB})
	mustOwe(t, ro, Owed{Rows: 2})
}

// An older store is counted as it is, not migrated; a newer one is refused
// (it may keep records this cardd does not know of); a missing one is not
// created.
func TestOpenReadOnlyVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := filepath.Join(dir, "old.db")
	db, err := sql.Open(driverName, DSN(old))
	if err != nil {
		t.Fatal(err)
	}
	// Version 1: the journal alone, no voids or shifts tables.
	for _, q := range []string{migrations[0], "PRAGMA user_version = 1",
		`INSERT INTO journal (terminal, kind, state, card, counter, balance_fen, amount_fen, created, updated)
			VALUES ('000000000001', 'read', 'done', '` + cardA + `', 0, 0, 0, 1, 1)`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := snap(t, old)
	ro, err := OpenReadOnly(ctx, old, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mustOwe(t, ro, Owed{Rows: 1})
	var v int
	if err := ro.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != 1 {
		t.Errorf("user_version = %d, %v; want 1 (not migrated)", v, err)
	}
	ro.Close()
	before.check(t, snap(t, old))

	newer := filepath.Join(dir, "newer.db")
	s, err := Open(newer, testTerminal)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "PRAGMA user_version = 9999"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if ro, err := OpenReadOnly(ctx, newer, time.Second); !errors.Is(err, ErrSchemaNewer) {
		if err == nil {
			ro.Close()
		}
		t.Errorf("newer schema: %v; want ErrSchemaNewer", err)
	}

	missing := filepath.Join(dir, "missing.db")
	if _, err := OpenReadOnly(ctx, missing, time.Second); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing store: %v; want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the missing store was created: %v", err)
	}
}
